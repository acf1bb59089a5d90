// The base image cache's retention. The cache key holds the archive's state, so a busy archive
// makes a new image of a box every day or two (about 570 MB for debian-12); without pruning a
// nightly host fills its disk with images nobody will use again. An image goes once two newer
// ones of its box exist and it has not been used for a day: a build copies its image when Packer
// starts (use_backing_file = false), long before a day has passed.
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const KEEP_NEWEST = 2;
export const UNUSED_FOR_MS = 24 * 3600_000;

/** Says an image was handed to a build just now (its `last-used` file's mtime). */
export function markBaseImageUsed(dir: string): void {
  writeFileSync(path.join(dir, 'last-used'), `${new Date().toISOString()}\n`);
}

function lastUsed(dir: string): number {
  const marker = path.join(dir, 'last-used');
  return statSync(existsSync(marker) ? marker : path.join(dir, 'base.json')).mtimeMs;
}

/**
 * Removes the box's images beyond the newest KEEP_NEWEST that have been unused for UNUSED_FOR_MS.
 * Only folders boxsmith made are looked at: `<box>-<16 hex digits>` holding a `base.json`.
 * Returns the folders removed.
 */
export function pruneBaseImages(imagesDir: string, box: string, now = Date.now()): string[] {
  if (!existsSync(imagesDir)) return [];
  const pattern = new RegExp(`^${box.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{16}$`);
  const images = readdirSync(imagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && pattern.test(entry.name) && existsSync(path.join(imagesDir, entry.name, 'base.json')))
    .map((entry) => ({ dir: path.join(imagesDir, entry.name), used: lastUsed(path.join(imagesDir, entry.name)) }))
    .sort((a, b) => b.used - a.used);
  const removed: string[] = [];
  for (const image of images.slice(KEEP_NEWEST)) {
    if (now - image.used < UNUSED_FOR_MS) continue;
    rmSync(image.dir, { recursive: true, force: true });
    rmSync(`${image.dir}.lock`, { force: true });
    removed.push(image.dir);
  }
  return removed;
}
