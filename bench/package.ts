// npm run bench:package: packaging a QEMU box, in one run on the same disk: Packer's own vagrant
// post-processor (Packer 1.6.6, the qemu builder over the disk image, at the same gzip level)
// followed by the re-reads boxsmith did on its box before (inspectBox, then the copy step-package
// staged), against boxsmith's one-pass packager on the same output disk (its gzip is bgzip's), and
// against `tar | pigz -p2 | sha256sum` and `tar | bgzip -@2 | sha256sum`; it checks both boxes hold
// the same disk, byte for byte. Then at
// equal box size: the packager at gzip levels 1..6, up to the first whose box is no larger than
// Packer's (whose "level 6" does less work than zlib's), and the ratio at that level. Then, per
// compression, on a smaller disk of the same mix: box size, pack time, and `vagrant box add` time.
// The disk is a qcow2 of BENCH_PACKAGE_GIB (default 2) GiB of mixed content: thirds of zeros,
// this host's files (hostFiles) and random; or, with BENCH_PACKAGE_DISK, a guest's own disk (e.g. a
// debian-12 base image from ~/.cache/boxsmith/base-images), copied, its first sector zeroed. Prints ratios; asserts no time.
//
// Packer's leg needs a VM run by the qemu builder (its post-processor takes only a builder's
// artifact): the disk has no boot sector, and with `-boot reboot-timeout=0 -no-reboot` SeaBIOS's
// failed boot ends QEMU at once, which Packer (communicator "none") takes as the VM shutting down.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findExecutable } from '../src/exec/tools.ts';
import { inspectBox } from '../src/store/box-file.ts';
import { BOX_COMPRESSIONS, libvirtLayout, packageBox } from '../src/store/box-packager.ts';

const gib = Number(process.env.BENCH_PACKAGE_GIB ?? 2);
const compressionGib = Number(process.env.BENCH_COMPRESSION_GIB ?? 0.25);
const dir = mkdtempSync(path.join(tmpdir(), 'boxsmith-bench-package-'));

const time = async (what: () => Promise<unknown> | unknown) => {
  const start = process.hrtime.bigint();
  await what();
  return Number(process.hrtime.bigint() - start) / 1e9;
};
const line = (name: string, value: string) => console.log(`  ${name.padEnd(52)} ${value}`);
const seconds = (value: number) => `${value.toFixed(2)} s`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * `size` bytes of this host's /usr, as a guest's disk holds it (programs, libraries, their text):
 * whole files, every n-th of /usr's regular files in path order so the sample spans the tree. Real
 * files, because gzip's levels (and Packer's pgzip against zlib) differ on them as on a box's disk,
 * where one repeated line or made-up text do not show it.
 */
function hostFiles(size: number): Buffer {
  const files = (readdirSync('/usr', { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
  const sizes = files.map((file) => statSync(file).size);
  const total = sizes.reduce((sum, n) => sum + n, 0);
  const stride = Math.max(1, Math.floor(total / size / 1.5));
  const parts: Buffer[] = [];
  let length = 0;
  for (let pass = 0; length < size && pass < stride; pass++) {
    for (let i = pass; i < files.length && length < size; i += stride) {
      try {
        const part = readFileSync(files[i]!);
        parts.push(part);
        length += part.length;
      } catch {
        // unreadable: skipped
      }
    }
  }
  return Buffer.concat(parts).subarray(0, size);
}

/** A qcow2 of `size` GiB: thirds of zeros, files of this host's /usr and random, in 64 MiB pieces. */
function mixedDisk(name: string, size: number): string {
  const raw = path.join(dir, `${name}.raw`);
  const piece = 64 << 20;
  const text = hostFiles(piece);
  writeFileSync(raw, '');
  for (let i = 0; i < Math.max(3, Math.round((size * 1024 ** 3) / piece)); i++) {
    const kind = i % 3;
    const chunk = kind === 0 ? Buffer.alloc(piece) : kind === 1 ? text : execFileSync('head', ['-c', String(piece), '/dev/urandom'], { maxBuffer: piece + 1 });
    writeFileSync(raw, chunk, { flag: 'a' });
  }
  const disk = path.join(dir, `${name}.qcow2`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, disk]);
  rmSync(raw);
  return disk;
}

const virtualSize = (disk: string) => (JSON.parse(execFileSync('qemu-img', ['info', '--output=json', disk], { encoding: 'utf8' })) as { 'virtual-size': number })['virtual-size'];
const entrySha256 = (box: string, entry: string, decompress: string) =>
  execFileSync('sh', ['-c', `tar --use-compress-program="$3" -xOf "$1" "$2" | sha256sum`, 'sh', box, entry, decompress], { encoding: 'utf8' }).split(' ')[0];

/** Packer 1.6.6's qemu builder over `disk`, then its vagrant post-processor; the seconds from "Running post-processor" to Packer's exit. */
async function packerPostProcessor(disk: string, work: string): Promise<{ box: string; outputDisk: string; seconds: number }> {
  const template = path.join(work, 'bench.pkr.hcl');
  writeFileSync(
    template,
    `source "qemu" "bench" {
  accelerator        = "tcg"
  headless           = true
  disk_image         = true
  use_backing_file   = false
  iso_url            = "${disk}"
  iso_checksum       = "none"
  format             = "qcow2"
  communicator       = "none"
  shutdown_timeout   = "5m"
  output_directory   = "${work}/qemu"
  vm_name            = "box.img"
  disable_vnc        = true
  qemuargs           = [["-no-reboot"], ["-boot", "reboot-timeout=0"], ["-m", "256"]]
}
build {
  sources = ["source.qemu.bench"]
  post-processor "vagrant" {
    compression_level    = 6
    keep_input_artifact  = true
    output               = "${work}/packer.box"
  }
}
`,
  );
  return new Promise((resolve, reject) => {
    const packer = spawn('packer', ['build', '-color=false', template], { env: { ...process.env, CHECKPOINT_DISABLE: '1', PACKER_CACHE_DIR: path.join(work, 'cache') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let started: bigint | undefined;
    let output = '';
    packer.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (started === undefined && /Running post-processor/.test(output)) started = process.hrtime.bigint();
    });
    packer.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    packer.on('error', reject);
    packer.on('close', (code) => {
      if (code !== 0 || started === undefined) return reject(new Error(`packer build failed (${code}):\n${output.slice(-3000)}`));
      resolve({ box: path.join(work, 'packer.box'), outputDisk: path.join(work, 'qemu', 'box.img'), seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    });
  });
}

try {
  const missing = ['packer', 'qemu-system-x86_64', 'qemu-img', 'qemu-io', 'bgzip', 'pigz', 'zstd', 'xz', 'vagrant'].filter((tool) => !findExecutable(tool));
  if (missing.length) throw new Error(`bench:package needs ${missing.join(', ')} (setup/install.sh installs them)`);
  const ownDisk = process.env.BENCH_PACKAGE_DISK;
  const source = ownDisk ? path.join(dir, 'source.qcow2') : mixedDisk('source', gib);
  if (ownDisk) {
    copyFileSync(ownDisk, source);
    // Its boot sector zeroed, so that SeaBIOS finds nothing to boot and QEMU ends at once (see above).
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -z 0 512', source], { stdio: 'ignore' });
  }
  const work = path.join(dir, 'packer');
  mkdirSync(work);
  const packer = await packerPostProcessor(source, work);
  // Today's flow after Packer: the box read through to find metadata.json and hashed, then copied into staging.
  const rereads = await time(async () => {
    await inspectBox(packer.box, 'libvirt');
    copyFileSync(packer.box, path.join(dir, 'staged.box'));
  });
  rmSync(path.join(dir, 'staged.box'));
  // boxsmith's packager on the disk Packer left, as step-package does.
  const box = path.join(dir, 'boxsmith.box');
  const packager = await time(() => packageBox(libvirtLayout(packer.outputDisk, virtualSize(packer.outputDisk)), box));
  writeFileSync(path.join(work, 'qemu', 'metadata.json'), JSON.stringify(libvirtLayout(packer.outputDisk, virtualSize(packer.outputDisk)).metadata));
  const tarPigz = await time(() => execFileSync('sh', ['-c', 'tar -C "$1" -cf - metadata.json box.img | pigz -6 -p2 | sha256sum >/dev/null', 'sh', path.join(work, 'qemu')]));
  const tarBgzip = await time(() => execFileSync('sh', ['-c', 'tar -C "$1" -cf - metadata.json box.img | bgzip -c -l 6 -@ 2 | sha256sum >/dev/null', 'sh', path.join(work, 'qemu')]));
  const sameDisk = entrySha256(packer.box, 'box.img', 'pigz') === entrySha256(box, 'box.img', 'pigz');

  const what = ownDisk ? `${ownDisk} (${mib(virtualSize(source))} virtual, ` : `${gib} GiB qcow2 of zeros, this host's /usr files and random (`;
  console.log(`${what}${mib(statSync(packer.outputDisk).size)} as Packer left it), gzip level 6:`);
  line("Packer's vagrant post-processor", `${seconds(packer.seconds)}  box ${mib(statSync(packer.box).size)}`);
  line('  + the re-reads (inspectBox + copy into staging)', seconds(rereads));
  line('boxsmith packager (one pass, hashed)', `${seconds(packager)}  box ${mib(statSync(box).size)}`);
  line('tar | pigz -6 -p2 | sha256sum', seconds(tarPigz));
  line('tar | bgzip -l 6 -@ 2 | sha256sum', seconds(tarBgzip));
  line('(Packer + re-reads) / packager', `${((packer.seconds + rereads) / packager).toFixed(2)}x (issue 16 asks >= 1.5x)`);
  line('packager / (tar | pigz | sha256sum)', `${(packager / tarPigz).toFixed(2)}x (asks <= 1.15x)`);
  line('packager / (tar | bgzip | sha256sum), its own compressor', `${(packager / tarBgzip).toFixed(2)}x`);
  line('the two boxes hold the same disk (box.img sha256)', sameDisk ? 'yes' : 'NO');

  // At equal box size: Packer's "level 6" (klauspost/pgzip) compresses less than zlib's 6, so the
  // packager at a lower level makes a box as small; the first of levels 1..6 whose box is no larger.
  const packerBox = statSync(packer.box).size;
  const bytes = (size: number) => `${mib(size)} (${size.toLocaleString('en-US')} bytes)`;
  console.log(`\nat equal box size: the packager at gzip levels 1..6, up to the first box <= Packer's level-6 box, ${bytes(packerBox)}:`);
  let equalLevel: number | undefined;
  for (let level = 1; level <= 6 && equalLevel === undefined; level++) {
    const file = path.join(dir, `boxsmith-${level}.box`);
    const packed = await time(() => packageBox(libvirtLayout(packer.outputDisk, virtualSize(packer.outputDisk)), file, { compression: 'gzip', level }));
    const size = statSync(file).size;
    rmSync(file);
    line(`boxsmith packager at gzip ${level}`, `${seconds(packed)}  box ${bytes(size)}${size <= packerBox ? '' : ", larger than Packer's"}`);
    if (size <= packerBox) {
      equalLevel = level;
      line(`(Packer + re-reads) / packager at gzip ${level}`, `${((packer.seconds + rereads) / packed).toFixed(2)}x (level ${level}: the first whose box is no larger than Packer's)`);
    }
  }
  if (equalLevel === undefined) line('(Packer + re-reads) / packager at equal size', "none of levels 1..6 made a box as small as Packer's");
  rmSync(work, { recursive: true, force: true });

  // Per compression, on a smaller disk (xz is slow): size, pack time, and `vagrant box add`.
  const small = mixedDisk('small', compressionGib);
  console.log(`\nper compression, ${compressionGib} GiB qcow2 of the same mix (${mib(statSync(small).size)}):`);
  // gzip three times: bgzip's 64 KiB members, pigz's one stream (a PATH without bgzip) and node's
  // zlib's 1 MiB members (a PATH with neither), to show what each costs and that bsdtar reads all.
  const pigzOnly = mkdtempSync(path.join(dir, 'pigz-only-'));
  symlinkSync(findExecutable('pigz')!, path.join(pigzOnly, 'pigz'));
  const cases = [
    ...BOX_COMPRESSIONS.map((compression) => ({ name: compression, compression, env: process.env })),
    { name: 'gzip (pigz)', compression: 'gzip' as const, env: { ...process.env, PATH: pigzOnly } },
    { name: "gzip (node's zlib)", compression: 'gzip' as const, env: { ...process.env, PATH: '/nonexistent' } },
  ];
  for (const { name, compression, env } of cases) {
    const file = path.join(dir, `small-${compression}.box`);
    const pack = await time(() => packageBox(libvirtLayout(small, virtualSize(small)), file, { compression, env }));
    const vagrantHome = mkdtempSync(path.join(dir, 'vagrant-home-'));
    const add = await time(() =>
      execFileSync('vagrant', ['box', 'add', '--name', `bench/${compression}`, '--provider', 'libvirt', file], {
        env: { ...process.env, VAGRANT_HOME: vagrantHome, VAGRANT_CHECKPOINT_DISABLE: '1' },
        stdio: 'ignore',
      }),
    );
    line(name, `box ${mib(statSync(file).size)}  pack ${seconds(pack)}  vagrant box add ${seconds(add)}`);
    rmSync(vagrantHome, { recursive: true, force: true });
    rmSync(file);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
