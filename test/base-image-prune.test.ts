import assert from 'node:assert/strict';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { markBaseImageUsed, pruneBaseImages } from '../src/build/base-image-prune.ts';
import { tempDir } from './helpers.ts';

const DAY = 24 * 3600_000;

function image(root: string, name: string, usedDaysAgo: number, { marker = true } = {}): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'base.json'), '{}\n');
  writeFileSync(`${dir}.lock`, '');
  const when = new Date(Date.now() - usedDaysAgo * DAY);
  if (marker) {
    markBaseImageUsed(dir);
    utimesSync(path.join(dir, 'last-used'), when, when);
  } else utimesSync(path.join(dir, 'base.json'), when, when);
  return dir;
}

describe('the base image cache keeps the two newest images of a box and those used within a day', () => {
  it('removes older images unused for a day, with their lock files; keeps the newest two, recent ones, other boxes and folders it did not make', () => {
    const root = tempDir('boxsmith-prune-');
    const newest = image(root, 'debian-12-00000000000000a1', 0);
    const second = image(root, 'debian-12-00000000000000a2', 0.2);
    const recentlyUsed = image(root, 'debian-12-00000000000000a3', 0.5);
    const stale = image(root, 'debian-12-00000000000000a4', 5);
    const staleNoMarker = image(root, 'debian-12-00000000000000a5', 9, { marker: false });
    const otherBox = image(root, 'debian-13-00000000000000b1', 30);
    const notOurs = path.join(root, 'debian-12-notahash');
    mkdirSync(notOurs);
    const half = path.join(root, 'debian-12-00000000000000a6'); // no base.json: a folder being made, or not boxsmith's
    mkdirSync(half);

    const removed = pruneBaseImages(root, 'debian-12').sort();
    assert.deepEqual(removed, [stale, staleNoMarker].sort());
    for (const dir of [stale, staleNoMarker]) {
      assert.equal(existsSync(dir), false);
      assert.equal(existsSync(`${dir}.lock`), false);
    }
    for (const dir of [newest, second, recentlyUsed, otherBox, notOurs, half]) assert.ok(existsSync(dir), `${dir} kept`);
    assert.deepEqual(pruneBaseImages(root, 'debian-12'), [], 'a second pass removes nothing more');
  });

  it('the two used last stay however old they are; marking an image used makes it one of them', () => {
    const root = tempDir('boxsmith-prune-');
    const [c1, c2, c3, c4] = [10, 12, 20, 30].map((days, index) => image(root, `debian-12-00000000000000c${index + 1}`, days));
    markBaseImageUsed(c3!);
    assert.deepEqual(pruneBaseImages(root, 'debian-12').sort(), [c2!, c4!].sort());
    for (const dir of [c1!, c3!]) assert.ok(existsSync(dir), `${dir} kept`);
  });
});
