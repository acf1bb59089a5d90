// Files that readers (a web server, a later build, a crash-recovering boxsmith) see whole or not
// at all: written to a hidden temporary file in the same folder (so the rename cannot cross file
// systems), flushed to disk, renamed over the old one, then the folder flushed.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** `.<name>.tmp-<pid>-<random>`: hidden, so a catalog server never serves one. */
export function temporaryName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Removes the temporary files of `file` (see temporaryName) that a killed writer left. Only for a
 * caller that holds the lock on `file`: then no temporary of it can be another writer's live one.
 * Returns the removed paths.
 */
export async function removeLeftTemporaries(file: string): Promise<string[]> {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const left = names.filter((name) => name.startsWith(prefix) && /^\d+-[0-9a-f]{8}$/.test(name.slice(prefix.length))).map((name) => path.join(dir, name));
  for (const temporary of left) await rm(temporary, { force: true });
  return left;
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `file` with `content` atomically (temporary file, fsync, rename, fsync of the folder). */
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
