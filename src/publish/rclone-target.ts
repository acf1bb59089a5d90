// Publishing into a catalog tree on an rclone remote (`--to rclone:REMOTE:PATH,base-url=URL`): the
// same tree as a static target (see static-target.ts), on whatever storage rclone reaches, served
// by whatever serves that storage at base-url. The order of writes is what keeps readers safe:
//
//   1. each box is uploaded under a hidden temporary name, its SHA-256 read back from the remote
//      and compared, then moved to its final name, followed by its .sha256 and build record;
//   2. only then the catalog, `<org>/<box>.json` and `<org>/<box>`, each uploaded under a temporary
//      name and moved into place (a rename on SFTP, WebDAV and local; copy then delete on S3 and
//      other object stores, where a single object appears whole either way);
//   3. only once the new catalog is up, the folders of versions retention dropped are deleted.
//
// A publish killed anywhere leaves the old catalog naming only files that are there. The next run
// skips boxes already in place with the right hash, and rclone skips a temporary upload that
// arrived whole (`copyto --checksum`), so it resumes where the killed one stopped.
import path from 'node:path';
import { Watchdog } from '../exec/watchdog.ts';
import { defaultRunId } from '../exec/run-id.ts';
import { FOLDER_MARKER, newMarker } from '../files/owned-folder.ts';
import type { BoxArtifact, BuiltVersion } from './artifacts.ts';
import { formatCatalog, parseCatalog, type Catalog } from './catalog.ts';
import { PublishError } from './errors.ts';
import { Rclone, temporaryPath } from './rclone.ts';
import type { RcloneRemote } from './rclone-remote.ts';
import { startReport, type ProviderOutcome, type PublishReport } from './report.ts';
import type { Redactor } from './secrets.ts';
import { CatalogTree, planRelease, recordFile } from './static-target.ts';
import { parseBuildRecord, type BuildRecord } from '../store/build-record.ts';
import { compareVersions } from '../store/box-store.ts';

export interface RclonePublishOptions {
  remote: RcloneRemote;
  baseUrl: string;
  built: BuiltVersion;
  description: string;
  keep: number;
  dryRun: boolean;
  log: (line: string) => void;
  /** The logs root: rclone's output goes to `<logsDir>/<run id>/publish.log`. */
  logsDir: string;
  redactor: Redactor;
  signal?: AbortSignal;
}

/** A catalog tree on a remote: rclone, and where each file of one box lives in it. */
export class RemoteCatalogTree {
  readonly tree: CatalogTree;
  constructor(
    readonly rclone: Rclone,
    org: string,
    boxName: string,
  ) {
    // Relative paths only: the tree's files are named `<org>/...` from the remote's PATH.
    this.tree = new CatalogTree('', org, boxName);
  }

  get catalogPath(): string {
    return `${this.tree.org}/${this.tree.boxName}`;
  }

  get catalogJsonPath(): string {
    return `${this.catalogPath}.json`;
  }

  async readCatalog(): Promise<Catalog | undefined> {
    const text = await this.rclone.read(this.catalogPath);
    return text === undefined ? undefined : parseCatalog(text, this.rclone.shown(this.catalogPath));
  }

  /** Both catalog files, each whole: the `.json` one first, then the one read by name. */
  async writeCatalog(catalog: Catalog): Promise<void> {
    const text = formatCatalog(catalog);
    // Uploaded together; moved into place the `.json` one first, then the one read by name.
    await this.rclone.writeTexts(this.tree.org, [this.catalogJsonPath, this.catalogPath].map((file) => ({ name: file.slice(file.lastIndexOf('/') + 1), text })));
  }

  /** Deletes the folders of versions no catalog lists any more. */
  async deleteVersions(versions: string[], log: (line: string) => void): Promise<void> {
    for (const version of versions) {
      // versionFolder refuses a version that is not one plain path segment (a hand-edited `../..`).
      if (!this.tree.versionFolder(version)) {
        log(`${version} left the catalog; it names no folder of the tree, so nothing was deleted`);
        continue;
      }
      await this.rclone.purge(this.tree.versionPath(version));
      log(`deleted ${this.rclone.shown(this.tree.versionPath(version))} (not among the versions kept)`);
    }
  }

  /**
   * Puts a local box at `relative` unless the same bytes are there: uploaded under a temporary
   * name, its hash read back from the remote, then moved into place. Resolves to whether it
   * uploaded anything.
   */
  async placeBox(localFile: string, relative: string, sha256: string, size: number, log: (line: string) => void): Promise<'uploaded' | 'unchanged'> {
    const checksumFile = `${relative}.sha256`;
    const checksumText = `${sha256}  ${relative.slice(relative.lastIndexOf('/') + 1)}\n`;
    if ((await this.rclone.sha256(relative)) === sha256) {
      // A publish killed between moving the box into place and writing its checksum file left none.
      if ((await this.rclone.read(checksumFile))?.trim() !== checksumText.trim()) await this.rclone.writeText(checksumFile, checksumText);
      return 'unchanged';
    }
    const temporary = temporaryPath(relative);
    log(`uploading ${localFile} (${(size / 1048576).toFixed(1)} MiB) to ${this.rclone.shown(temporary)}`);
    await this.rclone.upload(localFile, temporary, size);
    const onRemote = await this.rclone.sha256(temporary);
    if (onRemote !== sha256) {
      await this.rclone.deleteFile(temporary);
      throw new PublishError(`the upload of ${localFile} to ${this.rclone.shown(temporary)} has sha256 ${onRemote ?? '(none)'}, not ${sha256}: removed; publish again`);
    }
    log(`verified sha256 on the remote (${this.rclone.hashMethodUsed === 'download' ? 'downloaded and hashed by rclone: the backend has no SHA-256' : "the backend's own hash"})`);
    await this.rclone.move(temporary, relative);
    await this.rclone.writeText(checksumFile, checksumText);
    return 'uploaded';
  }
}

/**
 * Makes sure the remote's PATH is boxsmith's catalog tree (missing, empty, or carrying the marker a
 * boxsmith publish left) before anything is written: retention deletes version folders in it.
 */
export async function claimRemoteTree(rclone: Rclone, { dryRun }: { dryRun: boolean }): Promise<void> {
  const entries = await rclone.list('');
  const marker = entries?.find((entry) => entry.path === FOLDER_MARKER && !entry.isDir);
  if (marker) {
    const text = (await rclone.read(FOLDER_MARKER)) ?? '';
    let kind: unknown;
    try {
      kind = (JSON.parse(text) as { kind?: unknown }).kind;
    } catch {
      kind = undefined;
    }
    if (kind !== 'catalog') throw new PublishError(`${rclone.shown()} is boxsmith's ${String(kind ?? 'unknown')} folder (${FOLDER_MARKER}), not a catalog tree: publish elsewhere`);
    return;
  }
  if (entries && entries.length) {
    throw new PublishError(
      `${rclone.shown()} already holds files boxsmith did not write (no ${FOLDER_MARKER} in it): publish into an empty folder or one boxsmith published to`,
    );
  }
  if (!dryRun) await rclone.writeText(FOLDER_MARKER, newMarker('catalog'));
}

/** Starts what every rclone target needs: the run's watchdog (ends rclone should boxsmith die) and rclone. */
export async function openRemote(
  options: { remote: RcloneRemote; logsDir: string; redactor: Redactor; signal?: AbortSignal; stage: string },
  work: (rclone: Rclone) => Promise<void>,
): Promise<void> {
  const logDir = path.join(options.logsDir, defaultRunId());
  const watchdog = await Watchdog.start({ logDir });
  try {
    const rclone = new Rclone({
      remote: options.remote,
      logDir,
      stage: options.stage,
      redactor: options.redactor,
      watchdog,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await work(rclone);
  } finally {
    await watchdog.goodbye();
  }
}

export async function publishToRcloneRemote(options: RclonePublishOptions): Promise<PublishReport> {
  const { built, dryRun, log, baseUrl } = options;
  const report = startReport(`rclone:${options.remote.shown}`, built, dryRun);
  await openRemote({ ...options, stage: 'publish' }, async (rclone) => {
    await claimRemoteTree(rclone, { dryRun });
    const remoteTree = new RemoteCatalogTree(rclone, built.org, built.boxName);
    const { tree } = remoteTree;
    const existing = await remoteTree.readCatalog();
    const { entries, catalog, dropped } = planRelease({
      tree,
      existing,
      built,
      baseUrl,
      description: options.description,
      keep: options.keep,
      catalogShown: rclone.shown(remoteTree.catalogPath),
    });
    for (const [index, artifact] of built.artifacts.entries()) {
      report.outcomes.push(await placeArtifact(remoteTree, built.version, artifact, entries[index]!.url, options));
    }
    report.catalogFiles = [remoteTree.catalogPath, remoteTree.catalogJsonPath].map((file) => rclone.shown(file));
    report.droppedVersions = dropped.map((entry) => entry.version);
    if (dryRun) {
      log(`[dry run] would write the catalog ${report.catalogFiles.join(' and ')} with versions ${catalog.versions.map((v) => v.version).join(', ')}`);
      for (const entry of dropped) log(`[dry run] would delete ${rclone.shown(tree.versionPath(entry.version))}`);
      report.ok = true;
      return;
    }
    await remoteTree.writeCatalog(catalog);
    report.released = true;
    // Only now that no catalog points at them.
    await remoteTree.deleteVersions(dropped.map((entry) => entry.version), log);
    report.ok = true;
  });
  for (const skipped of built.skipped) report.outcomes.push({ provider: skipped.provider, status: 'skipped', detail: skipped.reason });
  return report;
}

/** One box and its build record into the remote tree. */
async function placeArtifact(remoteTree: RemoteCatalogTree, version: string, artifact: BoxArtifact, url: string, options: RclonePublishOptions): Promise<ProviderOutcome> {
  const relative = remoteTree.tree.boxPath(version, artifact.provider, artifact.architecture);
  const outcome = { provider: artifact.provider, architecture: artifact.architecture, detail: url };
  if (options.dryRun) {
    const there = (await remoteTree.rclone.sha256(relative)) === artifact.sha256;
    if (!there) options.log(`[dry run] would upload ${artifact.file} to ${remoteTree.rclone.shown(relative)}`);
    return { ...outcome, status: there ? 'unchanged' : 'planned' };
  }
  const placed = await remoteTree.placeBox(artifact.file, relative, artifact.sha256, artifact.size, options.log);
  const record = recordFile(relative);
  if (placed === 'uploaded' || (await remoteTree.rclone.read(record)) === undefined) {
    await remoteTree.rclone.writeText(record, `${JSON.stringify(artifact.record, null, 2)}\n`);
  }
  return { ...outcome, status: placed === 'uploaded' ? 'published' : 'unchanged' };
}

/**
 * The build records a remote catalog tree lists for each of `boxes` (keyed `org/box provider`),
 * newest version first: what a nightly on a fresh runner compares its inputs with, as it does with
 * a static tree's (publishedRecords). A version without a readable record is left out.
 */
export async function remotePublishedRecords(
  options: { remote: RcloneRemote; logsDir: string; redactor: Redactor; signal?: AbortSignal },
  boxes: Array<{ org: string; boxName: string; provider: string }>,
): Promise<Map<string, BuildRecord[]>> {
  const found = new Map<string, BuildRecord[]>();
  await openRemote({ ...options, stage: 'plan' }, async (rclone) => {
    for (const { org, boxName, provider } of boxes) {
      const remoteTree = new RemoteCatalogTree(rclone, org, boxName);
      const records: BuildRecord[] = [];
      for (const entry of (await remoteTree.readCatalog())?.versions ?? []) {
        for (const published of entry.providers.filter((p) => p.name === provider && p.architecture)) {
          const file = recordFile(remoteTree.tree.boxPath(entry.version, provider, published.architecture!));
          const text = await rclone.read(file);
          try {
            if (text !== undefined) records.push(parseBuildRecord(text, rclone.shown(file)));
          } catch {
            // Damaged: not a build to compare with.
          }
        }
      }
      found.set(`${org}/${boxName} ${provider}`, records.sort((a, b) => compareVersions(b.version, a.version)));
    }
  });
  return found;
}
