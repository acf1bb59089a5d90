// The input cache shared by every build on the host: where an ISO lives in it, and the sidecar that
// records that a cached file was verified, so that a 600 MB ISO is not re-hashed on every build.
import type { BigIntStats } from 'node:fs';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { syncDirectory, writeFileAtomic } from '../atomic-files.ts';
import { formatChecksum, type Checksum } from './checksum.ts';

/** `BOXSMITH_CACHE`, or `~/.cache/boxsmith`. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.BOXSMITH_CACHE ? path.resolve(env.BOXSMITH_CACHE) : path.join(homedir(), '.cache', 'boxsmith');
}

/** The files of one ISO in the cache. */
export interface IsoCacheEntry {
  /** `<cache>/iso/<algorithm>-<hex>`: keyed by checksum, so a changed checksum never meets a stale file. */
  dir: string;
  /** The verified ISO. */
  path: string;
  /** A download in progress or interrupted; resumed by the next attempt. */
  partPath: string;
  /** Records the checksum, size and mtime of `path` when it was last verified. */
  sidecarPath: string;
  /** Held while one process checks or downloads this entry. */
  lockPath: string;
}

/** `folder`: the cache's folder for this kind of input: `iso`, or `docker` for Docker's static binaries. */
export function isoCacheEntry(fileName: string, checksum: Checksum, cacheDir: string, folder = 'iso'): IsoCacheEntry {
  // The schema restricts names to [A-Za-z0-9._-]+.iso; this guards callers that skip it.
  if (fileName !== path.basename(fileName) || fileName.startsWith('.')) {
    throw new Error(`invalid file name "${fileName}" for the input cache: it must be a plain file name`);
  }
  const dir = path.join(cacheDir, folder, `${checksum.algorithm}-${checksum.hex}`);
  const file = path.join(dir, fileName);
  return { dir, path: file, partPath: `${file}.part`, sidecarPath: `${file}.verified`, lockPath: `${file}.lock` };
}

interface Sidecar {
  checksum: string;
  size: number;
  /** Nanoseconds as a decimal string: exact, unlike a float of milliseconds. */
  mtimeNs: string;
  verifiedAt: string;
}

/** Whether the sidecar says `entry.path` was verified against `checksum` and it has not changed since. */
export async function hasVerifiedSidecar(entry: IsoCacheEntry, checksum: Checksum): Promise<boolean> {
  let sidecar: Partial<Sidecar>;
  let file;
  try {
    sidecar = JSON.parse(await readFile(entry.sidecarPath, 'utf8')) as Partial<Sidecar>;
    file = await stat(entry.path, { bigint: true });
  } catch {
    return false; // missing or unreadable: the file gets hashed instead
  }
  return (
    sidecar.checksum === formatChecksum(checksum) &&
    sidecar.size === Number(file.size) &&
    sidecar.mtimeNs === file.mtimeNs.toString()
  );
}

/** Records that `entry.path`, as `file` describes it (stat taken before hashing), matches `checksum`. */
export async function writeSidecar(entry: IsoCacheEntry, checksum: Checksum, file: BigIntStats): Promise<void> {
  const sidecar: Sidecar = {
    checksum: formatChecksum(checksum),
    size: Number(file.size),
    mtimeNs: file.mtimeNs.toString(),
    verifiedAt: new Date().toISOString(),
  };
  await writeFileAtomic(entry.sidecarPath, `${JSON.stringify(sidecar, null, 2)}\n`);
}

/** Whether two stats of a path show the same, unchanged file. */
export function sameFileState(a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino;
}

export async function removeSidecar(entry: IsoCacheEntry): Promise<void> {
  await rm(entry.sidecarPath, { force: true });
}

/** Moves a finished download into place: one rename, then the directory flushed so it survives a crash. */
export async function commitPart(entry: Pick<IsoCacheEntry, 'dir' | 'path' | 'partPath'>): Promise<void> {
  await rename(entry.partPath, entry.path);
  await syncDirectory(entry.dir);
}

