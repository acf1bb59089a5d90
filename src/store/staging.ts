// A build's files wait in a staging folder beside their version folder,
// boxes/<org>/<box>/<version>/.staging-<provider>-<run id>/ (the same file system, so each is put in
// place by one rename), and go into place together, the box last: a reader who sees the box sees
// its checksum, record and smoke results. A build that fails before that leaves the last good box
// as it was.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { displayPath } from '../definitions/errors.ts';
import { BoxStoreError, boxFiles, buildSidecars, writeChecksumFile } from './box-store.ts';

const STAGING_PREFIX = '.staging-';

/** Whether a name in a version folder is a staging folder (of a running or a killed build). */
export function isStagingName(name: string): boolean {
  return name.startsWith(STAGING_PREFIX);
}

export interface Staging {
  /** boxes/<org>/<box>/<version>/.staging-<provider>-<run id>/ */
  dir: string;
  /** Where its files go: boxes/<org>/<box>/<version>/ */
  versionDir: string;
  /** Vagrant's provider name: libvirt, virtualbox, vmware_desktop. */
  provider: string;
  /** The topmost folder made for it (undefined: only the staging folder was new). */
  createdFolder?: string;
}

/** Where a run's staging folder for a provider is: known before it is made, so the watchdog can be told first. */
export function stagingDir(versionDir: string, provider: string, runId: string): string {
  return path.join(versionDir, `${STAGING_PREFIX}${provider}-${runId}`);
}

/** Makes the staging folder, and the version folder and those above it where missing. */
export function createStaging(versionDir: string, provider: string, runId: string): Staging {
  const dir = stagingDir(versionDir, provider, runId);
  const created = mkdirSync(dir, { recursive: true });
  return { dir, versionDir, provider, ...(created && created !== dir ? { createdFolder: created } : {}) };
}

/** The staged files, named as in the version folder. */
export function stagedFiles(staging: Staging) {
  return boxFiles(staging.dir, staging.provider);
}

/**
 * Moves the box (already read and hashed: `sha256`) into the staging folder with its checksum file.
 * On one file system that is a rename and the box is not read again; across file systems it is
 * copied in one pass that hashes what it writes, and the copy must have the same digest.
 */
export async function stageBox(staging: Staging, from: string, sha256: string, signal?: AbortSignal): Promise<string> {
  const staged = stagedFiles(staging).box;
  try {
    renameSync(from, staged);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    const copied = await copyHashing(from, staged, signal);
    if (copied !== sha256) throw new BoxStoreError(`${displayPath(from)} changed while it was copied to ${displayPath(staged)} (sha256 ${copied}, read before as ${sha256})`);
    await rm(from);
  }
  writeChecksumFile(staged, sha256);
  return staged;
}

async function copyHashing(from: string, to: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  try {
    await pipeline(
      createReadStream(from, { highWaterMark: 1 << 20 }),
      async function* hashing(chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(to, { flags: 'wx' }),
      ...(signal ? [{ signal }] : []),
    );
  } catch (error) {
    // A failed write names no file of its own (ENOSPC): say which one it was.
    if (error instanceof Error && !('path' in error)) Object.assign(error, { dest: to });
    throw error;
  }
  return hash.digest('hex');
}

/**
 * Renames the staged files into the version folder, the box last: its checksum, record and smoke
 * results are in place before it is, and a sidecar of an earlier build of this version that this
 * build did not make is removed (it does not describe this box). Returns the box's path.
 */
export function putInPlace(staging: Staging): string {
  const staged = stagedFiles(staging);
  const final = boxFiles(staging.versionDir, staging.provider);
  for (const required of [staged.box, staged.checksum, staged.record]) {
    if (!existsSync(required)) throw new BoxStoreError(`${displayPath(required)} is missing: a box goes into place only with its checksum and build record`);
  }
  const from = buildSidecars(staged);
  const to = buildSidecars(final);
  from.forEach((file, index) => {
    if (existsSync(file)) renameSync(file, to[index]!);
    else rmSync(to[index]!, { force: true });
  });
  renameSync(staged.box, final.box);
  rmSync(staging.dir, { recursive: true, force: true });
  return final.box;
}

/**
 * Removes the staging folder and what is in it, and the folders made for it that stayed empty: an
 * empty version folder would pass for a version.
 */
export function removeStaging(staging: Staging): void {
  rmSync(staging.dir, { recursive: true, force: true });
  if (!staging.createdFolder) return;
  for (let folder = path.dirname(staging.dir); readdirSync(folder).length === 0; folder = path.dirname(folder)) {
    rmdirSync(folder);
    if (folder === staging.createdFolder) return;
  }
}
