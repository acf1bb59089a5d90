// The disk holding boxes/ fills up during package and record: BOXSMITH_BOXES is a small tmpfs,
// the builder is the stand-in packer (test/fixtures/build/packer; a real build needs a VM and
// minutes) making a box larger than the free space. The build fails with one line naming the
// full disk and the folder, leaves nothing in boxes/ but the last good box, byte for byte, and
// once space is freed the next run succeeds with no clean-up by hand.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildSandbox, STANDIN_PACKER } from '../build-sandbox.ts';
import { runIdsIn, snapshotFolder, snapshotHost, waitUntilClean, type LeftoverScope } from './leftovers.ts';

const isRoot = process.getuid?.() === 0;

/** A stand-in packer build whose boxes/ is a tmpfs of `sizeMb`. */
function sandbox(sizeMb: number) {
  const { root, env, build } = buildSandbox('boxsmith-fault-disk-');
  const boxes = env.BOXSMITH_BOXES;
  mkdirSync(boxes);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}M,mode=0755`, 'boxsmith-fault-boxes', boxes], { encoding: 'utf8' });
  assert.equal(mounted.status, 0, mounted.stderr);
  const scope: LeftoverScope = { folders: [root], libvirt: false };
  return {
    root,
    env,
    boxes,
    scope,
    build,
    unmount: () => spawnSync('umount', [boxes]),
    resize: (mb: number) => spawnSync('mount', ['-o', `remount,size=${mb}M`, boxes]),
  };
}

/** The build failed at `step` with one line naming the full disk and the boxes folder, and no stack trace. */
function assertSaidDiskFull(result: SpawnSyncReturns<string>, step: string, boxes: string): void {
  assert.equal(result.status, 1, result.stdout + result.stderr);
  const failed = result.stdout.split('\n').filter((line) => line.startsWith('FAILED'));
  assert.equal(failed.length, 1, result.stdout);
  assert.match(failed[0] as string, new RegExp(`^FAILED  standin \\(qemu\\): no space left on the disk holding ${boxes} \\(ENOSPC\\)( while writing ${boxes}/\\S+)?; nothing was put in place: free space there and build again$`));
  assert.match(result.stderr, new RegExp(`\\(libvirt\\): ${step} \\[FAILED: no space left`), 'the step that failed');
  assert.doesNotMatch(result.stdout + result.stderr, /^\s+at /m, 'no stack trace');
}

describe('the disk holding boxes/ fills up (tmpfs as BOXSMITH_BOXES, stand-in packer)', { skip: !isRoot && 'needs root to mount a tmpfs' }, () => {
  it('during package, then during record (stand-in packer): one line naming the disk each time, nothing left, last good box unchanged, the next run succeeds once space is freed', async () => {
    const { root, env, boxes, scope, build, unmount, resize } = sandbox(8);
    try {
      const host = snapshotHost(scope);
      // Its disk of the size the record case's box has: that box's size is known from this one (random data packs to the same size).
      const good = build('1.0.0', { STANDIN_BOX_MB: '2' });
      assert.equal(good.status, 0, good.stdout + good.stderr);
      const lastGood = snapshotFolder(boxes);

      // Package: the box is larger than the whole disk.
      const packageFull = build('2.0.0', { STANDIN_BOX_MB: '12' });
      assertSaidDiskFull(packageFull, 'package', boxes);
      assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(env.BOXSMITH_LOGS) }), []);
      assert.deepEqual(snapshotFolder(boxes), lastGood, 'no staging or version folder left; the last good box byte for byte');

      // Record: after the stand-in made its disk, another program fills the disk holding boxes/ up
      // to the box boxsmith will package from it (as large as 1.0.0's), its checksum file and its
      // package manifest (a page each): the box is staged, and the build record is what no longer fits.
      const filler = path.join(boxes, 'someone-elses.file');
      const fillingPacker = path.join(root, 'filling-packer');
      writeFileSync(
        fillingPacker,
        [
          '#!/bin/bash',
          `'${STANDIN_PACKER}' "$@" || exit`,
          '[ "$1" = build ] || exit 0',
          `page=4096; size=$(stat -c %s '${path.join(boxes, 'phusion/standin-amd64/1.0.0/libvirt.box')}')`,
          `free=$(( $(stat -f -c '%a * %S' '${boxes}') ))`,
          `fallocate -l $(( free - (size + page - 1) / page * page - 2 * page )) '${filler}'`,
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
      const recordFull = build('2.0.0', { BOXSMITH_PACKER: fillingPacker, STANDIN_BOX_MB: '2' });
      assertSaidDiskFull(recordFull, 'record', boxes);
      assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(env.BOXSMITH_LOGS) }), []);
      const left = snapshotFolder(boxes);
      assert.match(left['someone-elses.file'] ?? '', /^file /, 'what boxsmith did not write is kept');
      delete left['someone-elses.file'];
      assert.deepEqual(left, lastGood, 'no staging or version folder left; the last good box byte for byte');

      // Space freed (the other file gone, the disk grown): the same build succeeds, nothing to clean by hand.
      rmSync(filler);
      assert.equal(resize(64).status, 0);
      const next = build('2.0.0', { STANDIN_BOX_MB: '12' });
      assert.equal(next.status, 0, next.stdout + next.stderr);
      assert.deepEqual(Object.keys(snapshotFolder(path.join(boxes, 'phusion/standin-amd64/2.0.0'))), ['libvirt.box', 'libvirt.box.sha256', 'libvirt.json', 'libvirt.packages.tsv']);
      const after = snapshotFolder(boxes);
      for (const [entry, state] of Object.entries(lastGood)) assert.equal(after[entry], state, `${entry} unchanged`);
      assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(env.BOXSMITH_LOGS) }), []);
    } finally {
      unmount();
    }
  });
});
