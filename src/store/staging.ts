// A build's files wait in a staging folder beside their version folder,
// boxes/<org>/<box>/<version>/.staging-<provider>-<run id>/ (the same file system, so each is put in
// place by one rename), and go into place together, the box last: a reader who sees the box sees
// its checksum, record and smoke results. A build that fails before that leaves the last good box
// as it was.
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { displayPath } from '../definitions/errors.ts';
import { BoxStoreError, boxFiles, buildSidecars } from './box-store.ts';

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
