// Writing into a tree that a web server is serving while we write: every file appears whole or
// not at all (see ../atomic-files.ts).
import { constants } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { syncDirectory, syncFile, temporaryName, writeFileAtomic } from '../atomic-files.ts';
import path from 'node:path';
import { hashFile } from '../inputs/checksum.ts';
import { PublishError } from './errors.ts';

export { writeFileAtomic };

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
