// npm run bench:package: boxsmith's one-pass packager against today's re-reads of a packed box
// (inspectBox, then a copy as step-package staged it) and against `tar | pigz -p2 | sha256sum`, on a
// qcow2 of BENCH_PACKAGE_GIB (default 2) GiB of mixed content (zeros, text, random), in a temp dir.
// Not yet here: Packer's own vagrant post-processor (artifice + null source) as a fourth leg.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspectBox } from '../src/store/box-file.ts';
import { libvirtLayout, packageBox } from '../src/store/box-packager.ts';

const gib = Number(process.env.BENCH_PACKAGE_GIB ?? 2);
const dir = mkdtempSync(path.join(tmpdir(), 'boxsmith-bench-package-'));
try {
  const raw = path.join(dir, 'disk.raw');
  // Thirds of zeros, text and random, in 64 MiB pieces (node buffers stay small).
  const piece = 64 << 20;
  const pieces = Math.round((gib * 1024 ** 3) / piece);
  const text = Buffer.from('Lorem ipsum dolor sit amet, boxsmith bench line of text\n'.repeat(Math.ceil(piece / 56))).subarray(0, piece);
  writeFileSync(raw, '');
  for (let i = 0; i < pieces; i++) {
    const kind = i % 3;
    const chunk = kind === 0 ? Buffer.alloc(piece) : kind === 1 ? text : execFileSync('head', ['-c', String(piece), '/dev/urandom'], { maxBuffer: piece + 1 });
    writeFileSync(raw, chunk, { flag: 'a' });
  }
  const disk = path.join(dir, 'box.img');
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, disk]);
  rmSync(raw);
  const virtualSize = (JSON.parse(execFileSync('qemu-img', ['info', '--output=json', disk], { encoding: 'utf8' })) as { 'virtual-size': number })['virtual-size'];
  const out = path.join(dir, 'out');
  mkdirSync(out);

  const time = async (what: () => Promise<unknown> | unknown) => {
    const start = process.hrtime.bigint();
    await what();
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  const box = path.join(out, 'libvirt.box');
  const packager = await time(() => packageBox(libvirtLayout(disk, virtualSize), box));
  const rereads = await time(async () => {
    await inspectBox(box, 'libvirt');
    copyFileSync(box, path.join(out, 'copied.box'));
  });
  writeFileSync(path.join(dir, 'metadata.json'), JSON.stringify(libvirtLayout(disk, virtualSize).metadata));
  const tarPigz = await time(() => execFileSync('sh', ['-c', `tar -C "$1" -cf - metadata.json box.img | pigz -p2 | sha256sum >/dev/null`, 'sh', dir]));
  const line = (name: string, seconds: number) => console.log(`${name.padEnd(44)} ${seconds.toFixed(2)} s`);
  console.log(`${gib} GiB qcow2 of zeros, text and random; box ${(execFileSync('stat', ['-c', '%s', box], { encoding: 'utf8' }).trim())} bytes`);
  line('boxsmith packager (one pass)', packager);
  line('re-reads alone (inspectBox + copy)', rereads);
  line('tar | pigz -p2 | sha256sum', tarPigz);
  console.log(`packager / tar|pigz|sha256sum: ${(packager / tarPigz).toFixed(2)}x`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
