// boxsmith's packager on a real small qcow2 (qemu-img, mixed zeros/text/random): each compression
// packaged as libvirt, read back by inspectBox and added by Debian's vagrant with its own VAGRANT_HOME
// (adding a box boots nothing); a level other than the default really changes the box; an existing
// destination is refused, never replaced.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { findExecutable } from '../../src/exec/tools.ts';
import { inspectBox } from '../../src/store/box-file.ts';
import { BOX_COMPRESSIONS, boxCompressor, libvirtLayout, packageBox } from '../../src/store/box-packager.ts';
import { run, tempDir } from '../helpers.ts';
import { VAGRANT, vagrant } from '../publish/vagrant-client.ts';

function smallQcow2(dir: string): string {
  const raw = path.join(dir, 'disk.raw');
  const text = Buffer.from('boxsmith packager test line\n'.repeat(40_000));
  writeFileSync(raw, Buffer.concat([Buffer.alloc(2 << 20), text, randomBytes(1 << 20), Buffer.alloc(3 << 20)]));
  const disk = path.join(dir, 'box.img');
  const converted = run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, disk]);
  assert.equal(converted.status, 0, converted.stderr);
  return disk;
}

function virtualSize(disk: string): number {
  const info = run('qemu-img', ['info', '--output=json', disk]);
  assert.equal(info.status, 0, info.stderr);
  return (JSON.parse(info.stdout) as { 'virtual-size': number })['virtual-size'];
}

/** The members of a file bgzip wrote (BGZF: each member's extra field "BC" gives its size less one); throws where the file is not that. */
function gzipMembers(file: string): number {
  const bytes = readFileSync(file);
  let members = 0;
  for (let at = 0; at < bytes.length; members++) {
    const isBgzfMember = bytes[at] === 0x1f && bytes[at + 1] === 0x8b && bytes[at + 3] === 4 && bytes[at + 12] === 0x42 && bytes[at + 13] === 0x43;
    assert.ok(isBgzfMember, `a BGZF member at byte ${at}`);
    at += bytes.readUInt16LE(at + 16) + 1;
  }
  return members;
}

const packagings = [
  ...BOX_COMPRESSIONS.map((compression) => ({ compression, by: '', env: process.env })),
  // Node's zlib's 1 MiB members, where neither bgzip nor pigz is installed.
  { compression: 'gzip' as const, by: " by node's zlib", env: { ...process.env, PATH: '/nonexistent' } },
];
for (const { compression, by, env } of packagings) {
  test(`a qcow2 packaged as libvirt with ${compression}${by}: metadata.json first, sha256 of the file, vagrant adds it`, { skip: !VAGRANT && 'no vagrant' }, async () => {
    const dir = tempDir();
    const disk = smallQcow2(dir);
    const vagrantfile = path.join(dir, 'Vagrantfile');
    writeFileSync(vagrantfile, 'Vagrant.configure("2") do |config|\nend\n');
    const boxes = path.join(dir, 'out');
    run('mkdir', [boxes]);
    const box = path.join(boxes, 'libvirt.box');
    const packaged = await packageBox(libvirtLayout(disk, virtualSize(disk), vagrantfile), box, { compression, env });
    assert.deepEqual(readdirSync(boxes), ['libvirt.box']);
    assert.equal(packaged.sha256, run('sha256sum', [box]).stdout.split(' ')[0]);
    const inspected = await inspectBox(box, 'libvirt');
    assert.equal(inspected.sha256, packaged.sha256);
    assert.equal(inspected.size, packaged.size);
    assert.equal(inspected.entries[0]!.path, 'metadata.json');
    assert.deepEqual(inspected.entries.map((e) => e.path), ['metadata.json', 'Vagrantfile', 'box.img']);
    assert.deepEqual(inspected.metadata, { provider: 'libvirt', format: 'qcow2', virtual_size: 1 });
    // What vagrant adds below is bgzip's many-member gzip, not a one-member stream.
    if (compression === 'gzip' && !by) {
      const members = gzipMembers(box);
      assert.ok(members > 10, `${members} gzip members`);
    }
    if (by) assert.equal(packaged.compressor, 'zlib');
    // vagrant() sets VAGRANT_HOME to `home` itself (an env VAGRANT_HOME would be overridden).
    const home = path.join(dir, 'vagrant-home');
    const added = await vagrant(['box', 'add', '--name', 't/x', box], { home, cwd: dir });
    assert.equal(added.code, 0, added.output);
    assert.match(added.output, /Successfully added box 't\/x' \(v0\) for 'libvirt'/);
    // What vagrant unpacked is the disk, byte for byte.
    const unpacked = path.join(home, 'boxes', 't-VAGRANTSLASH-x', '0', 'libvirt', 'box.img');
    assert.equal(run('sha256sum', [unpacked]).stdout.split(' ')[0], run('sha256sum', [disk]).stdout.split(' ')[0]);
  });
}

/** A file of varied text (numbered lines), where gzip's levels differ in size. */
function textFile(dir: string): string {
  const file = path.join(dir, 'text.img');
  writeFileSync(file, Array.from({ length: 200_000 }, (_, i) => `line ${i}: ${(i * 7919) % 10007} boxsmith ${(i * 31) % 97}\n`).join(''));
  return file;
}

/** A PATH with pigz and none of bgzip: the packager's second choice for gzip. */
function pigzOnlyPath(): string {
  const bin = tempDir();
  symlinkSync(findExecutable('pigz')!, path.join(bin, 'pigz'));
  return bin;
}

for (const [what, env] of [
  ['bgzip', process.env],
  ['pigz (no bgzip on PATH)', { ...process.env, PATH: pigzOnlyPath() }],
  ["node's zlib (neither on PATH)", { ...process.env, PATH: '/nonexistent' }],
] as const) {
  test(`gzip at level 1 and 9 with ${what}: two different boxes, the smaller at 9, each saying its level; without a level, 6`, async () => {
    const dir = tempDir();
    const file = textFile(dir);
    const layout = { metadata: { provider: 'libvirt' }, files: [{ name: 'box.img', source: file }] };
    const sizes: Record<number, number> = {};
    for (const level of [1, 9, undefined]) {
      const packaged = await packageBox(layout, path.join(dir, `level-${level ?? 'default'}.box`), { compression: 'gzip', level, env });
      assert.equal(packaged.level, level ?? 6);
      assert.equal((await inspectBox(packaged.file, 'libvirt')).sha256, packaged.sha256);
      sizes[packaged.level] = packaged.size;
    }
    assert.ok(sizes[9]! < sizes[1]!, `level 9 (${sizes[9]} bytes) is smaller than level 1 (${sizes[1]} bytes)`);
    assert.ok(sizes[6]! < sizes[1]! && sizes[6]! >= sizes[9]!, `the default, 6 (${sizes[6]} bytes), lies between`);
  });
}

test('boxCompressor: the program and level per compression, defaults gzip 6, zstd 3, xz 6; gzip by bgzip, else pigz, else zlib; a level the compression does not take is refused', () => {
  const flags = (compressor: ReturnType<typeof boxCompressor>) => (compressor.kind === 'program' ? compressor.args.filter((arg) => /^-\d+$/.test(arg)) : []);
  const threads = String(availableParallelism());
  assert.deepEqual(boxCompressor('gzip'), { kind: 'program', command: findExecutable('bgzip'), args: ['-c', '-l', '6', '-@', threads], level: 6 });
  assert.deepEqual(boxCompressor('gzip', 9), { kind: 'program', command: findExecutable('bgzip'), args: ['-c', '-l', '9', '-@', threads], level: 9 });
  const pigzOnly = pigzOnlyPath();
  assert.deepEqual(boxCompressor('gzip', 4, { PATH: pigzOnly }), { kind: 'program', command: path.join(pigzOnly, 'pigz'), args: ['-c', '-4'], level: 4 });
  assert.deepEqual(flags(boxCompressor('zstd')), ['-3']);
  assert.deepEqual(flags(boxCompressor('xz')), ['-6']);
  assert.deepEqual(flags(boxCompressor('zstd', 19)), ['-19']);
  assert.deepEqual(flags(boxCompressor('xz', 0)), ['-0']);
  assert.deepEqual(boxCompressor('gzip', 2, { PATH: '/nonexistent' }), { kind: 'zlib', level: 2 });
  assert.throws(() => boxCompressor('gzip', 0), /^Error: compression level 0 is not a gzip level \(1-9\)$/);
  assert.throws(() => boxCompressor('zstd', 20), /20 is not a zstd level \(1-19\)/);
  assert.throws(() => boxCompressor('xz', 10), /10 is not an xz level \(0-9\)/);
});

test('an aborted packaging leaves no file in the destination folder', async () => {
  const dir = tempDir();
  const disk = smallQcow2(dir);
  const boxes = path.join(dir, 'out');
  run('mkdir', [boxes]);
  const controller = new AbortController();
  const packaging = packageBox(libvirtLayout(disk, virtualSize(disk)), path.join(boxes, 'libvirt.box'), { signal: controller.signal });
  controller.abort();
  await assert.rejects(packaging);
  assert.deepEqual(readdirSync(boxes), []);
  assert.ok(existsSync(disk), 'the disk it read stays');
});

for (const when of ['before it starts', 'while it packages'] as const) {
  test(`a destination that exists ${when} is refused with one line and left as it was`, async () => {
    const dir = tempDir();
    const disk = smallQcow2(dir);
    const boxes = path.join(dir, 'out');
    run('mkdir', [boxes]);
    const box = path.join(boxes, 'libvirt.box');
    if (when === 'before it starts') writeFileSync(box, 'not boxsmith\'s\n');
    const packaging = packageBox(libvirtLayout(disk, virtualSize(disk)), box);
    // The check before any work has run (packageBox's synchronous part): this one comes after it.
    if (when === 'while it packages') writeFileSync(box, 'not boxsmith\'s\n');
    await assert.rejects(packaging, (error: Error) => {
      assert.equal(error.name, 'BoxStoreError');
      assert.match(error.message, /^\S*libvirt\.box already exists: boxsmith packages a box only into a name nothing has$/);
      return true;
    });
    assert.deepEqual(readdirSync(boxes), ['libvirt.box']);
    assert.equal(readFileSync(box, 'utf8'), 'not boxsmith\'s\n');
  });
}
