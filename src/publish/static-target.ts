// Publishing into a static catalog tree, laid out like Vagrant Cloud's URLs so that any static web
// server (nginx, S3, `npm run serve:boxes`) serves what the vagrant client asks for:
//
//   <root>/<org>/<box>           the catalog: VAGRANT_SERVER_URL=<base> vagrant box add <org>/<box>
//   <root>/<org>/<box>.json      the same catalog at a plain URL: vagrant box add <base>/<org>/<box>.json
//   <root>/<org>/boxes/<box>/versions/<version>/providers/<provider>/<architecture>.box (+ .sha256,
//     and its build record <architecture>.record.json, which a nightly reads back: src/nightly/plan.ts)
//
// Boxes are copied and verified first, the catalog is replaced atomically after them, and the
// files of versions dropped by retention are deleted last: a reader sees the old catalog or the
// new one, and every box either one points to exists.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { claimFolder } from '../files/owned-folder.ts';
import { withFileLock } from '../files/lock.ts';
import { hashFile } from '../inputs/checksum.ts';
import type { BoxArtifact, BuiltVersion } from './artifacts.ts';
import { applyRetention, formatCatalog, mergeIntoCatalog, parseCatalog, type Catalog, type CatalogProvider, type CatalogVersion } from './catalog.ts';
import { PublishError } from './errors.ts';
import { removeLeftTemporaries } from '../atomic-files.ts';
import { copyFileVerified, writeFileAtomic } from './files.ts';
import { startReport, type ProviderOutcome, type PublishReport } from './report.ts';
import { readBuildRecord, type BuildRecord } from '../store/build-record.ts';
import { compareVersions } from '../store/box-store.ts';

export const DEFAULT_KEEP = 3;

const PATH_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Where each file of one box lives in a catalog tree. */
export class CatalogTree {
  constructor(
    readonly root: string,
    readonly org: string,
    readonly boxName: string,
  ) {
    for (const [what, segment] of [['org', org], ['box name', boxName]] as const) {
      // Names become path segments and URL segments: no separators, no dot files, nothing to escape.
      if (!PATH_SEGMENT.test(segment)) throw new PublishError(`${what} "${segment}" cannot be a path in a catalog tree`);
    }
    // <org>/boxes/ holds the box files, so a box named "boxes" would collide with it.
    if (boxName === 'boxes') throw new PublishError('a box named "boxes" cannot be published to a static tree: <org>/boxes/ holds the box files');
  }

  get catalogFile(): string {
    return path.join(this.root, this.org, this.boxName);
  }

  get catalogJsonFile(): string {
    return `${this.catalogFile}.json`;
  }

  get lockFile(): string {
    return path.join(this.root, this.org, `.${this.boxName}.lock`);
  }

  /** The path of a version's folder relative to the root, with `/` separators (also its URL path). */
  versionPath(version: string): string {
    return [this.org, 'boxes', this.boxName, 'versions', version].join('/');
  }

  /**
   * The folder of a version a catalog lists, which retention deletes; none for a version that is
   * not one plain path segment (a hand-edited `../..` must never reach outside the tree).
   */
  versionFolder(version: string): string | undefined {
    return PATH_SEGMENT.test(version) ? this.file(this.versionPath(version)) : undefined;
  }

  boxPath(version: string, provider: string, architecture: string): string {
    return `${this.versionPath(version)}/providers/${provider}/${architecture}.box`;
  }

  file(relative: string): string {
    return path.join(this.root, ...relative.split('/'));
  }
}

export interface StaticPublishOptions {
  root: string;
  /** Where the tree's root is served; default: its file:// URL (the build host itself). */
  baseUrl?: string;
  built: BuiltVersion;
  description: string;
  keep: number;
  dryRun: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Makes sure `static:DIR` is boxsmith's catalog tree (new, empty, marked, or published by an
 * earlier boxsmith) before anything is copied: retention deletes version folders in it.
 */
export function claimCatalogTree(root: string, { checkOnly = false }: { checkOnly?: boolean } = {}): string {
  return claimFolder({ dir: root, kind: 'catalog', namedBy: '--to static:' }, { checkOnly });
}

export async function publishToStaticTree(options: StaticPublishOptions): Promise<PublishReport> {
  const { built, dryRun, log } = options;
  claimCatalogTree(options.root, { checkOnly: dryRun });
  const tree = new CatalogTree(path.resolve(options.root), built.org, built.boxName);
  const baseUrl = (options.baseUrl ?? pathToFileURL(tree.root).href).replace(/\/+$/, '');
  const report = startReport(`static:${tree.root}`, built, dryRun);

  const work = async () => {
    const existing = rebaseOwnEntries(readCatalog(tree), tree, baseUrl, log);
    const { entries, catalog, dropped } = planRelease({ tree, existing, built, baseUrl, description: options.description, keep: options.keep, catalogShown: tree.catalogFile });

    for (const [index, artifact] of built.artifacts.entries()) {
      report.outcomes.push(await placeBox(tree, built.version, artifact, entries[index]!.url, options));
    }
    report.catalogFiles = [tree.catalogFile, tree.catalogJsonFile];
    report.droppedVersions = dropped.map((entry) => entry.version);
    if (dryRun) {
      log(`[dry run] would write the catalog ${tree.catalogFile} and ${tree.catalogJsonFile} with versions ${catalog.versions.map((v) => v.version).join(', ')}`);
      for (const entry of dropped) log(`[dry run] would delete ${tree.versionFolder(entry.version) ?? `nothing of ${entry.version} (not a plain folder name)`}`);
      report.ok = true;
      return;
    }
    const text = formatCatalog(catalog);
    for (const file of [tree.catalogFile, tree.catalogJsonFile]) await removeTemporariesLeftBy(file, log);
    await writeFileAtomic(tree.catalogFile, text);
    await writeFileAtomic(tree.catalogJsonFile, text);
    report.released = true;
    // Only now that no catalog points at them.
    for (const entry of dropped) {
      const folder = tree.versionFolder(entry.version);
      if (folder) await rm(folder, { recursive: true, force: true });
      else log(`${entry.version} left the catalog; it names no folder of the tree, so nothing was deleted`);
    }
    report.ok = true;
  };

  if (dryRun) await work();
  else {
    await mkdir(path.dirname(tree.lockFile), { recursive: true });
    await withFileLock(tree.lockFile, work, {
      ...(options.signal ? { signal: options.signal } : {}),
      onWait: (owner) => log(`waiting for another publish of ${built.name}${owner ? ` (pid ${owner.pid} on ${owner.host}, since ${owner.since})` : ''}`),
      onTakeOver: (owner) => log(`took over the publish lock ${tree.lockFile}${owner ? ` of pid ${owner.pid} on ${owner.host}, which is gone` : ''}`),
    });
  }
  for (const skipped of built.skipped) report.outcomes.push({ provider: skipped.provider, status: 'skipped', detail: skipped.reason });
  return report;
}

export interface ReleasePlan {
  /** The catalog entries of the version's boxes, in the order of built.artifacts. */
  entries: CatalogProvider[];
  catalog: Catalog;
  /** Versions retention drops: their files are deleted once the new catalog is up. */
  dropped: CatalogVersion[];
}

/**
 * The catalog a publish writes into a tree served from `baseUrl` (any tree: local or on an rclone
 * remote): the version's boxes merged into what is there, then retention. Refuses a version that
 * retention would drop at once.
 */
export function planRelease(options: {
  tree: CatalogTree;
  existing: Catalog | undefined;
  built: BuiltVersion;
  baseUrl: string;
  description: string;
  keep: number;
  /** The catalog as messages name it. */
  catalogShown: string;
}): ReleasePlan {
  const { tree, built, baseUrl, keep } = options;
  const entries: CatalogProvider[] = built.artifacts.map((artifact) => ({
    name: artifact.provider,
    url: `${baseUrl}/${tree.boxPath(built.version, artifact.provider, artifact.architecture)}`,
    checksum_type: 'sha256',
    checksum: artifact.sha256,
    architecture: artifact.architecture,
  }));
  const merged = mergeIntoCatalog(options.existing, { name: built.name, description: options.description, version: built.version, providers: entries });
  const { catalog, dropped } = applyRetention(merged, keep);
  if (!catalog.versions.some((entry) => entry.version === built.version)) {
    throw new PublishError(
      `${built.version} is older than the ${keep} newest versions in ${options.catalogShown} (${catalog.versions.map((v) => v.version).join(', ')}): ` +
        `with --keep ${keep} it would be dropped at once; publish a newer version or raise --keep`,
    );
  }
  return { entries, catalog, dropped };
}

function readCatalog(tree: CatalogTree): Catalog | undefined {
  if (!existsSync(tree.catalogFile)) return undefined;
  return parseCatalog(readFileSync(tree.catalogFile, 'utf8'), tree.catalogFile);
}

/**
 * Points the entries of boxes that live in this tree at the current base URL, so that a tree
 * served from a new place (or published once without base-url) has no version left behind at
 * the old one. Entries pointing elsewhere (added by hand, hosted elsewhere) are kept as they are.
 */
function rebaseOwnEntries(catalog: Catalog | undefined, tree: CatalogTree, baseUrl: string, log: (line: string) => void): Catalog | undefined {
  if (!catalog) return catalog;
  const versions = catalog.versions.map((entry) => ({
    ...entry,
    providers: entry.providers.map((provider) => {
      if (!provider.architecture) return provider;
      const relative = tree.boxPath(entry.version, provider.name, provider.architecture);
      const url = `${baseUrl}/${relative}`;
      if (provider.url === url || !provider.url.endsWith(`/${relative}`) || !existsSync(tree.file(relative))) return provider;
      log(`${entry.version} ${provider.name}: URL moved to the base URL ${baseUrl}`);
      return { ...provider, url };
    }),
  }));
  return { ...catalog, versions };
}

/** Under the box's publish lock: the temporary copies of `file` a killed publish left, said and removed. */
async function removeTemporariesLeftBy(file: string, log: (line: string) => void): Promise<void> {
  for (const temporary of await removeLeftTemporaries(file)) log(`removed ${temporary}, left by a publish that did not finish`);
}

/** Copies one box into the tree (unless the same bytes are already there) and its .sha256 beside it. */
async function placeBox(tree: CatalogTree, version: string, artifact: BoxArtifact, url: string, options: StaticPublishOptions): Promise<ProviderOutcome> {
  const relative = tree.boxPath(version, artifact.provider, artifact.architecture);
  const destination = tree.file(relative);
  const outcome = { provider: artifact.provider, architecture: artifact.architecture, detail: url };
  const record = recordFile(destination);
  if (existsSync(destination) && statSync(destination).size === artifact.size && (await hashFile(destination, 'sha256', options.signal)).hex === artifact.sha256) {
    if (!options.dryRun && !existsSync(record)) await writeFileAtomic(record, `${JSON.stringify(artifact.record, null, 2)}\n`);
    return { ...outcome, status: 'unchanged' };
  }
  if (options.dryRun) {
    options.log(`[dry run] would copy ${artifact.file} to ${destination}`);
    return { ...outcome, status: 'planned' };
  }
  for (const file of [destination, `${destination}.sha256`, record]) await removeTemporariesLeftBy(file, options.log);
  options.log(`copying ${artifact.provider} (${(artifact.size / 1048576).toFixed(1)} MiB) to ${destination}`);
  await copyFileVerified(artifact.file, destination, artifact.sha256, options.signal);
  await writeFileAtomic(`${destination}.sha256`, `${artifact.sha256}  ${path.basename(destination)}\n`);
  await writeFileAtomic(record, `${JSON.stringify(artifact.record, null, 2)}\n`);
  return { ...outcome, status: 'published' };
}

/** The build record published beside a box: `<architecture>.box` -> `<architecture>.record.json`. */
export function recordFile(boxFile: string): string {
  return boxFile.replace(/\.box$/, '.record.json');
}

/**
 * The build records of the boxes a catalog tree lists for one provider, newest version first:
 * what a nightly on a fresh runner compares its inputs with (src/nightly/plan.ts). A version
 * published before records were, or whose record is unreadable, is left out.
 */
export function publishedRecords(root: string, org: string, boxName: string, provider: string): BuildRecord[] {
  const tree = new CatalogTree(path.resolve(root), org, boxName);
  const catalog = readCatalog(tree);
  const records: BuildRecord[] = [];
  for (const entry of catalog?.versions ?? []) {
    for (const published of entry.providers.filter((p) => p.name === provider && p.architecture)) {
      try {
        records.push(readBuildRecord(recordFile(tree.file(tree.boxPath(entry.version, provider, published.architecture!)))));
      } catch {
        // Not there (published by an earlier boxsmith) or damaged: not a build to compare with.
      }
    }
  }
  return records.sort((a, b) => compareVersions(b.version, a.version));
}
