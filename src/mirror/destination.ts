// Where a mirror writes: a boxsmith catalog tree, local (`static:DIR`) or on an rclone remote
// (`rclone:REMOTE:PATH,base-url=URL`), behind one interface so that the mirror keeps the same
// order of writes for both: boxes in place and verified first, the catalog last.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { withFileLock } from '../files/lock.ts';
import { hashFile } from '../inputs/checksum.ts';
import { formatCatalog, parseCatalog, type Catalog } from '../publish/catalog.ts';
import { PublishUsageError } from '../publish/errors.ts';
import { copyFileVerified, writeFileAtomic } from '../publish/files.ts';
import { claimRemoteTree, openRemote, RemoteCatalogTree } from '../publish/rclone-target.ts';
import type { Redactor } from '../publish/secrets.ts';
import { CatalogTree, claimCatalogTree } from '../publish/static-target.ts';
import type { PublishTarget } from '../publish/target.ts';

export interface MirrorDestination {
  /** The target as messages show it. */
  shown: string;
  /** Where the tree's root is served: the catalog's box URLs start with it. */
  baseUrl: string;
  tree: CatalogTree;
  readCatalog(): Promise<Catalog | undefined>;
  /** Whether `relative` is there with this SHA-256 (a box an earlier, interrupted mirror placed). */
  hasBox(relative: string, sha256: string): Promise<boolean>;
  /** Puts a verified local file at `relative`, with its `.sha256` beside it. */
  placeBox(localFile: string, relative: string, sha256: string, size: number): Promise<void>;
  writeCatalog(catalog: Catalog): Promise<void>;
}

export interface DestinationOptions {
  target: PublishTarget;
  org: string;
  boxName: string;
  logsDir: string;
  redactor: Redactor;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** Opens the destination (claimed as boxsmith's catalog tree, locked where it is local) for `work`. */
export async function withDestination(options: DestinationOptions, work: (destination: MirrorDestination) => Promise<void>): Promise<void> {
  const { target } = options;
  if (target.kind === 'static') {
    const root = claimCatalogTree(target.root);
    const tree = new CatalogTree(root, options.org, options.boxName);
    await mkdir(path.dirname(tree.lockFile), { recursive: true });
    await withFileLock(tree.lockFile, () => work(localDestination(tree, target.baseUrl ?? pathToFileURL(root).href, options.signal)), {
      ...(options.signal ? { signal: options.signal } : {}),
      onWait: () => options.log(`waiting for another publish or mirror of ${options.org}/${options.boxName}`),
    });
    return;
  }
  if (target.kind === 'rclone') {
    await openRemote({ remote: target.remote, logsDir: options.logsDir, redactor: options.redactor, stage: 'mirror', ...(options.signal ? { signal: options.signal } : {}) }, async (rclone) => {
      await claimRemoteTree(rclone, { dryRun: false });
      await work(remoteDestination(new RemoteCatalogTree(rclone, options.org, options.boxName), target.baseUrl, options.log));
    });
    return;
  }
  throw new PublishUsageError('mirror --to takes a catalog tree: static:DIR[,base-url=URL] or rclone:REMOTE:PATH,base-url=URL');
}

function localDestination(tree: CatalogTree, baseUrl: string, signal?: AbortSignal): MirrorDestination {
  return {
    shown: `static:${tree.root}`,
    baseUrl: baseUrl.replace(/\/+$/, ''),
    tree,
    readCatalog: async () => (existsSync(tree.catalogFile) ? parseCatalog(readFileSync(tree.catalogFile, 'utf8'), tree.catalogFile) : undefined),
    hasBox: async (relative, sha256) => {
      const file = tree.file(relative);
      return existsSync(file) && statSync(file).isFile() && (await hashFile(file, 'sha256', signal)).hex === sha256;
    },
    placeBox: async (localFile, relative, sha256) => {
      const destination = tree.file(relative);
      await copyFileVerified(localFile, destination, sha256, signal);
      await writeFileAtomic(`${destination}.sha256`, `${sha256}  ${path.basename(destination)}\n`);
    },
    writeCatalog: async (catalog) => {
      const text = formatCatalog(catalog);
      await writeFileAtomic(tree.catalogFile, text);
      await writeFileAtomic(tree.catalogJsonFile, text);
    },
  };
}

function remoteDestination(remoteTree: RemoteCatalogTree, baseUrl: string, log: (line: string) => void): MirrorDestination {
  return {
    shown: `rclone:${remoteTree.rclone.shown()}`,
    baseUrl,
    tree: remoteTree.tree,
    readCatalog: () => remoteTree.readCatalog(),
    hasBox: async (relative, sha256) => (await remoteTree.rclone.sha256(relative)) === sha256,
    placeBox: async (localFile, relative, sha256, size) => {
      await remoteTree.placeBox(localFile, relative, sha256, size, log);
    },
    writeCatalog: (catalog) => remoteTree.writeCatalog(catalog),
  };
}
