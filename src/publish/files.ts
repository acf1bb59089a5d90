// Writing into a tree that a web server is serving while we write: every file appears whole or
// not at all. Each is written to a hidden temporary file in the same directory (so the rename
// cannot cross file systems), flushed to disk, then renamed over the old one.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { hashFile } from '../inputs/checksum.ts';
import { PublishError } from './errors.ts';

/** `.<name>.tmp-<pid>-<random>`: hidden, so the catalog server never serves one. */
function temporaryName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `file` with `content` atomically (temporary file, fsync, rename, fsync of the directory). */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = temporaryName(file);
  try {
    const handle = await open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } finally {
    await rm(temporary, { force: true });
  }
  await syncDirectory(path.dirname(file));
}

/**
 * Copies `source` to `destination` atomically and proves the copy: its SHA-256 must be
 * `expectedSha256`, else nothing is left at the destination. Uses a copy-on-write clone where the
 * file system has them (btrfs, XFS), a plain copy elsewhere.
 */
export async function copyFileVerified(source: string, destination: string, expectedSha256: string, signal?: AbortSignal): Promise<void> {
  await mkdir(path.dirname(destination), { recursive: true });
  const temporary = temporaryName(destination);
  try {
    await copyFile(source, temporary, constants.COPYFILE_FICLONE);
    const { hex } = await hashFile(temporary, 'sha256', signal);
    if (hex !== expectedSha256) {
      throw new PublishError(`the copy of ${source} at ${destination} has sha256 ${hex}, not ${expectedSha256}: the copy was damaged or the source changed while it was copied`);
    }
    await syncFile(temporary);
    await rename(temporary, destination);
  } finally {
    await rm(temporary, { force: true });
  }
  await syncDirectory(path.dirname(destination));
}
