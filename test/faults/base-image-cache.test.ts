// A damaged base image in the cache (src/build/base-image.ts caches it by the hash of its inputs)
// is detected and made again, never used: checked on real qcow2 files made with qemu-img and then
// truncated, and through ensureBaseImage up to where it would start debootstrap (stopped there by
// an aborted signal, so no debootstrap runs).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { baseImageKey, checkCachedBaseImage, ensureBaseImage } from '../../src/build/base-image.ts';
import { CommandRunner } from '../../src/exec/command-runner.ts';
import { loadDefinition } from '../../src/definitions/load.ts';
import { REPO_ROOT, tempDir } from '../helpers.ts';
import { snapshotFolder, snapshotHost, waitUntilClean } from './leftovers.ts';

/** A cache entry as ensureBaseImage leaves it: a real qcow2 holding data, and its record. */
function cacheEntry(dir: string): { image: string; record: string; sha256: string; size: number } {
  mkdirSync(dir, { recursive: true });
  const raw = path.join(dir, 'disk.raw');
  writeFileSync(raw, randomBytes(4 * 1024 * 1024));
  const image = path.join(dir, 'base.qcow2');
  const made = spawnSync('qemu-img', ['convert', '-O', 'qcow2', raw, image], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  spawnSync('rm', [raw]);
  const sha256 = createHash('sha256').update(readFileSync(image)).digest('hex');
  const size = readFileSync(image).length;
  const record = path.join(dir, 'base.json');
  writeFileSync(record, `${JSON.stringify({ box: 'debian-12', sha256, size }, null, 2)}\n`);
  return { image, record, sha256, size };
}

describe('a damaged base image in the cache', () => {
  it('a whole entry is used, with the recorded sha256', async () => {
    const dir = path.join(tempDir('boxsmith-fault-base-'), 'debian-12-0123');
    const { image, sha256 } = cacheEntry(dir);
    assert.deepEqual(await checkCachedBaseImage(dir), { usable: true, image: { path: image, sha256, cached: true, dir } });
  });

  it('an empty cache has nothing to say', async () => {
    assert.deepEqual(await checkCachedBaseImage(path.join(tempDir('boxsmith-fault-base-'), 'none')), { usable: false });
  });

  it('a truncated image is not used: its size differs from the record', async () => {
    const dir = path.join(tempDir('boxsmith-fault-base-'), 'debian-12-0123');
    const { image, size } = cacheEntry(dir);
    truncateSync(image, Math.floor(size / 2));
    const result = await checkCachedBaseImage(dir);
    assert.equal(result.usable, false);
    assert.match(result.usable ? '' : (result.problem ?? ''), new RegExp(`${image} is ${Math.floor(size / 2)} bytes, its record says ${size}`));
  });

  it('a truncated image whose record agrees with its size is not used: qemu-img check finds it damaged', async () => {
    const dir = path.join(tempDir('boxsmith-fault-base-'), 'debian-12-0123');
    const { image, record, sha256, size } = cacheEntry(dir);
    truncateSync(image, Math.floor(size / 2));
    writeFileSync(record, JSON.stringify({ sha256, size: Math.floor(size / 2) }));
    const result = await checkCachedBaseImage(dir);
    assert.equal(result.usable, false);
    assert.match(result.usable ? '' : (result.problem ?? ''), new RegExp(`qemu-img check finds ${image} damaged`));
  });

  it('a half-written record, or an image without one, is not used', async () => {
    const dir = path.join(tempDir('boxsmith-fault-base-'), 'debian-12-0123');
    const { record } = cacheEntry(dir);
    writeFileSync(record, readFileSync(record, 'utf8').slice(0, 20));
    const halfRecord = await checkCachedBaseImage(dir);
    assert.match(halfRecord.usable ? '' : (halfRecord.problem ?? ''), new RegExp(`its record ${record} is unreadable`));
    spawnSync('rm', [record]);
    const noRecord = await checkCachedBaseImage(dir);
    assert.match(noRecord.usable ? '' : (noRecord.problem ?? ''), /is unreadable \(ENOENT/);
  });

  it('ensureBaseImage says why it makes a damaged cached image again and goes on to make it (stopped before debootstrap)', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root: without it ensureBaseImage stops at its prerequisites');
    const cacheDir = tempDir('boxsmith-fault-base-');
    const { definition } = loadDefinition('debian-12');
    const dir = path.join(cacheDir, 'base-images', `debian-12-${baseImageKey('debian-12', definition, REPO_ROOT, [])}`);
    const { image, size } = cacheEntry(dir);
    truncateSync(image, Math.floor(size / 2));
    const host = snapshotHost({ folders: [cacheDir], libvirt: false });
    const before = snapshotFolder(cacheDir);
    const warnings: string[] = [];
    const stop = new AbortController();
    stop.abort(new Error('stopped before debootstrap by the test'));
    const runner = new CommandRunner({ stage: 'inputs', logDir: tempDir('boxsmith-fault-base-logs-'), signal: stop.signal, deadline: Date.now() + 60_000 });
    await assert.rejects(
      ensureBaseImage({ box: 'debian-12', definition, archive: [], cacheDir, root: REPO_ROOT, aptProxy: undefined, runner, onWarning: (m) => warnings.push(m) }),
      (error: Error) => {
        // The damaged image was not returned: making a new one began, and the test's abort ended it.
        assert.match(`${error.message} ${String(error.cause ?? '')}`, /stopped before debootstrap by the test|abort/i);
        return true;
      },
    );
    assert.deepEqual(warnings, [`the cached debian-12 base image is not used: ${image} is ${Math.floor(size / 2)} bytes, its record says ${size}; making it again`]);
    assert.deepEqual(snapshotFolder(cacheDir), before, 'its work folder is gone; the entry waits for a successful rebuild to replace it');
    assert.ok(!existsSync(`${dir}.work-${process.pid}`));
    assert.deepEqual(await waitUntilClean(host, { folders: [cacheDir], libvirt: false }), []);
  });
});
