// The leftovers helper must be able to fail: a tagged process, a mount and a loop device made
// on purpose are reported, and once removed the host counts as clean again.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { newRunId, RUN_ID_ENV } from '../../src/exec/run-id.ts';
import { tempDir } from '../helpers.ts';
import { leftoversSince, snapshotFolder, snapshotHost, waitUntilClean } from './leftovers.ts';

const isRoot = process.getuid?.() === 0;

test('a process tagged with the run is a leftover until it ends', async () => {
  const runId = newRunId();
  const before = snapshotHost({ runIds: [runId], libvirt: false });
  const child = spawn('sleep', ['60'], { env: { ...process.env, [RUN_ID_ENV]: runId }, stdio: 'ignore' });
  try {
    await new Promise((resolve) => child.once('spawn', resolve));
    const left = leftoversSince(before, { runIds: [runId], libvirt: false });
    assert.equal(left.length, 1, left.join('\n'));
    assert.match(left[0] as string, new RegExp(`process ${child.pid} sleep \\(tagged with the run\\)`));
  } finally {
    child.kill('SIGKILL');
  }
  assert.deepEqual(await waitUntilClean(before, { runIds: [runId], libvirt: false }), []);
});

test('a mount and a loop device below the folders are leftovers until removed', { skip: !isRoot && 'needs root (mount, losetup)' }, async () => {
  const dir = tempDir('boxsmith-leftovers-');
  const mountPoint = path.join(dir, 'mnt');
  mkdirSync(mountPoint);
  const image = path.join(dir, 'disk.img');
  writeFileSync(image, Buffer.alloc(1024 * 1024));
  const before = snapshotHost({ folders: [dir], libvirt: false });
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1M', 'tmpfs', mountPoint]).status, 0);
  const loop = spawnSync('losetup', ['--find', '--show', image], { encoding: 'utf8' });
  const device = loop.stdout.trim();
  try {
    assert.equal(loop.status, 0, loop.stderr);
    const left = leftoversSince(before, { folders: [dir], libvirt: false });
    assert.deepEqual(left, [`loop device ${device} backed by ${image}`, `mount ${mountPoint} (tmpfs)`]);
  } finally {
    spawnSync('losetup', ['-d', device]);
    spawnSync('umount', [mountPoint]);
  }
  assert.deepEqual(await waitUntilClean(before, { folders: [dir], libvirt: false }), []);
});

test('a folder snapshot changes with one byte', () => {
  const dir = tempDir('boxsmith-leftovers-');
  mkdirSync(path.join(dir, 'v1'));
  writeFileSync(path.join(dir, 'v1', 'libvirt.box'), 'box');
  const before = snapshotFolder(dir);
  assert.match(before['v1/libvirt.box'] as string, /^file 3 [0-9a-f]{64} 644$/);
  writeFileSync(path.join(dir, 'v1', 'libvirt.box'), 'bot');
  assert.notDeepEqual(snapshotFolder(dir), before);
});

test('the host snapshot with libvirt and firewall state reads without error and agrees with itself', () => {
  // Host-wide state differs from host to host; taking it twice must agree with itself.
  const first = snapshotHost();
  assert.deepEqual(leftoversSince(first).filter((item) => !item.startsWith('process ')), []);
});
