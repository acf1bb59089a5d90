// inspectBox (src/store/box-file.ts) on real boxes made by real tar, gzip, xz and zstd in a
// temporary folder: the digest, the structure check for each provider, one clear line naming the
// file for each way a box can be wrong, and one pass over the file (a named pipe can be read once).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BoxFileError, inspectBox } from '../../src/store/box-file.ts';
import { run, tempDir } from '../helpers.ts';

const root = tempDir('boxsmith-box-file-');
let boxes = 0;

/** A box of `files` (name -> content), archived in that order by tar with `tarFlags` (-czf: gzip). */
function makeBox(files: Record<string, string | Buffer>, tarFlags = ['-czf']): string {
  const work = path.join(root, `content-${++boxes}`);
  mkdirSync(work);
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(work, name), content);
  const box = path.join(root, `made-${boxes}.box`);
  const tar = run('tar', [...tarFlags, box, '-C', work, ...Object.keys(files)]);
  assert.equal(tar.status, 0, tar.stderr);
  return box;
}

const LIBVIRT = { 'metadata.json': JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }), Vagrantfile: 'Vagrant.configure("2") do |config|\nend\n', 'box.img': randomBytes(64 * 1024) };
const sha256Of = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** inspectBox fails with one line that names the box and matches `message`. */
async function assertRefused(box: string, provider: string, message: RegExp): Promise<void> {
  await assert.rejects(inspectBox(box, provider), (error: unknown) => {
    assert.ok(error instanceof BoxFileError, String(error));
    assert.ok(error.message.includes(box), `names the box: ${error.message}`);
    assert.doesNotMatch(error.message, /\n/, 'one line');
    assert.match(error.message, message);
    return true;
  });
}

describe('inspectBox', () => {
  it('a gzip-compressed libvirt box: its sha256 and size as sha256sum and stat see them, its entries, its metadata', async () => {
    const box = makeBox(LIBVIRT);
    const inspected = await inspectBox(box, 'libvirt');
    assert.equal(inspected.sha256, run('sha256sum', [box]).stdout.split(' ')[0]);
    assert.equal(inspected.size, statSync(box).size);
    assert.equal(inspected.compression, 'gzip');
    assert.deepEqual(inspected.entries.map((e) => e.path), ['metadata.json', 'Vagrantfile', 'box.img']);
    assert.equal(inspected.entries[2]!.size, 64 * 1024);
    assert.deepEqual(inspected.metadata, { provider: 'libvirt', format: 'qcow2', virtual_size: 1 });
  });

  it('metadata.json last, after a large disk image (as Packer writes boxes)', async () => {
    const box = makeBox({ 'box.img': randomBytes(12 * 1024 * 1024), Vagrantfile: 'x', 'metadata.json': LIBVIRT['metadata.json'] });
    const inspected = await inspectBox(box, 'libvirt');
    assert.equal(inspected.entries.at(-1)!.path, 'metadata.json');
    assert.equal(inspected.sha256, sha256Of(box));
  });

  it('a box that is a plain tar (not compressed), told by its bytes whatever its name', async () => {
    const box = makeBox(LIBVIRT, ['-cf']);
    const inspected = await inspectBox(box, 'libvirt');
    assert.equal(inspected.compression, 'none');
    assert.equal(inspected.sha256, sha256Of(box));
  });

  it('entries archived as ./name count as name', async () => {
    const work = path.join(root, 'dotted');
    mkdirSync(work);
    for (const [name, content] of Object.entries(LIBVIRT)) writeFileSync(path.join(work, name), content);
    const box = path.join(root, 'dotted.box');
    assert.equal(run('tar', ['-czf', box, '-C', work, '.']).status, 0);
    assert.ok((await inspectBox(box, 'libvirt')).entries.some((e) => e.path === 'box.img'));
  });

  it('a box for another provider', async () => {
    await assertRefused(makeBox(LIBVIRT), 'virtualbox', /is a box for libvirt, not virtualbox$/);
  });

  it('no metadata.json', async () => {
    await assertRefused(makeBox({ 'box.img': 'disk', Vagrantfile: 'x' }), 'libvirt', /is not a Vagrant box: no metadata\.json$/);
  });

  it('a metadata.json that is not JSON, or names no provider', async () => {
    await assertRefused(makeBox({ ...LIBVIRT, 'metadata.json': '{"provider": libvirt' }), 'libvirt', /its metadata\.json is not JSON/);
    await assertRefused(makeBox({ ...LIBVIRT, 'metadata.json': '{"format":"qcow2"}' }), 'libvirt', /its metadata\.json names no provider$/);
  });

  it('a truncated gzip stream', async () => {
    const whole = makeBox({ ...LIBVIRT, 'box.img': randomBytes(1024 * 1024) });
    const cut = path.join(root, 'cut.box');
    writeFileSync(cut, readFileSync(whole).subarray(0, 512 * 1024));
    await assertRefused(cut, 'libvirt', /is not a whole gzip stream \(unexpected end of file\)/);
  });

  it('a truncated plain tar', async () => {
    const whole = makeBox({ ...LIBVIRT, 'box.img': randomBytes(1024 * 1024) }, ['-cf']);
    const cut = path.join(root, 'cut-tar.box');
    writeFileSync(cut, readFileSync(whole).subarray(0, 512 * 1024));
    await assertRefused(cut, 'libvirt', /is not a Vagrant box: it is neither gzip-compressed nor a whole tar archive \(Truncated input/);
  });

  it('not a tarball: a text file, and gzip of something else', async () => {
    const text = path.join(root, 'text.box');
    writeFileSync(text, 'this is not a box\n'.repeat(100));
    await assertRefused(text, 'libvirt', /it is neither gzip-compressed nor a whole tar archive/);
    const gzipped = path.join(root, 'gzipped-text.box');
    writeFileSync(gzipped, run('sh', ['-c', 'gzip -c "$1" | base64 -w0', 'sh', text]).stdout, 'base64');
    await assertRefused(gzipped, 'libvirt', /what it gunzips to is not a whole tar archive/);
    const empty = path.join(root, 'empty.box');
    writeFileSync(empty, '');
    await assertRefused(empty, 'libvirt', /is empty/);
  });

  it('xz and zstd boxes (made by tar) are read through their programs; a truncated one is refused; bzip2 is refused as not yet read', async () => {
    for (const [compression, flags] of [['xz', ['-cJf']], ['zstd', ['--zstd', '-cf']]] as const) {
      const box = makeBox(LIBVIRT, [...flags]);
      const inspected = await inspectBox(box, 'libvirt');
      assert.equal(inspected.compression, compression);
      assert.equal(inspected.sha256, run('sha256sum', [box]).stdout.split(' ')[0]);
      const cut = path.join(root, `cut-${compression}.box`);
      writeFileSync(cut, readFileSync(box).subarray(0, 40));
      await assertRefused(cut, 'libvirt', new RegExp(`is not a whole ${compression} stream`));
    }
    await assertRefused(makeBox(LIBVIRT, ['-cjf']), 'libvirt', /is bzip2-compressed: boxsmith reads gzip-, zstd- and xz-compressed and plain tar boxes, not bzip2 yet$/);
  });

  it('each provider needs its own files: libvirt a box.img, virtualbox a box.ovf and the disks it names, vmware_desktop a .vmx', async () => {
    await assertRefused(makeBox({ 'metadata.json': LIBVIRT['metadata.json'], 'disk.qcow2': 'x' }), 'libvirt', /is not a libvirt box: no box\.img$/);
    const v2 = JSON.stringify({ provider: 'libvirt', format_version: 2, disks: [{ path: 'box_1.img' }, { path: 'box_2.img' }] });
    assert.ok(await inspectBox(makeBox({ 'metadata.json': v2, 'box_1.img': 'a', 'box_2.img': 'b' }), 'libvirt'));
    await assertRefused(makeBox({ 'metadata.json': v2, 'box_1.img': 'a' }), 'libvirt', /no box_2\.img$/);

    const virtualbox = JSON.stringify({ provider: 'virtualbox' });
    const ovf = '<?xml version="1.0"?>\n<Envelope ovf:version="1.0"><References><File ovf:id="file1" ovf:href="machine-disk001.vmdk"/></References></Envelope>\n';
    assert.ok(await inspectBox(makeBox({ 'box.ovf': ovf, 'machine-disk001.vmdk': 'disk', 'metadata.json': virtualbox }), 'virtualbox'));
    await assertRefused(makeBox({ 'box.ovf': ovf, 'other.vmdk': 'disk', 'metadata.json': virtualbox }), 'virtualbox', /box\.ovf names machine-disk001\.vmdk, which it lacks$/);
    await assertRefused(makeBox({ 'disk.vmdk': 'disk', 'metadata.json': virtualbox }), 'virtualbox', /is not a virtualbox box: no box\.ovf$/);

    const vmware = JSON.stringify({ provider: 'vmware_desktop' });
    assert.ok(await inspectBox(makeBox({ 'box.vmx': 'config', 'disk.vmdk': 'disk', 'metadata.json': vmware }), 'vmware_desktop'));
    await assertRefused(makeBox({ 'disk.vmdk': 'disk', 'metadata.json': vmware }), 'vmware_desktop', /is not a vmware_desktop box: no \.vmx$/);
  });

  // The time limit only ends a run that waits for a second read; nothing here is timed.
  it('reads the file once: a box given through a named pipe, which can be read only once, gets the same digest', { timeout: 60_000 }, async () => {
    const box = makeBox({ ...LIBVIRT, 'box.img': randomBytes(8 * 1024 * 1024) });
    const pipe = path.join(root, 'box.fifo');
    assert.equal(run('mkfifo', [pipe]).status, 0);
    // `cat` writes the box into the pipe once; a second read would wait for a writer that never comes.
    const writer = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', box, pipe], { stdio: 'inherit' });
    const written = new Promise((resolve) => writer.on('exit', resolve));
    const inspected = await inspectBox(pipe, 'libvirt');
    assert.equal(await written, 0);
    assert.equal(inspected.sha256, sha256Of(box));
    assert.equal(inspected.size, statSync(box).size);
  });
});
