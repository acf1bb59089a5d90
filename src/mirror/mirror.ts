// `boxsmith mirror`: every version, provider and architecture of a box, copied from any catalog
// (./source.ts) into a boxsmith catalog tree (./destination.ts), so that a box living on a service
// that closes (HCP Vagrant) stays reachable by name and version.
//
// Each box is downloaded by the ISO cache's downloader (got, resumable `.part` files kept in
// <cache>/mirror/ across runs, the digest computed while the bytes arrive) and refused unless it
// has the checksum its catalog lists; it is then placed in the tree and verified there. The catalog
// is written once every box is in place. An interrupted mirror run again resumes its download
// where it stopped and skips boxes already in the tree with their SHA-256.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { formatChecksum, hashFile, type Checksum } from '../inputs/checksum.ts';
import { downloadVerified, type VerifiedDownload } from '../inputs/verified-download.ts';
import { withFileLock } from '../files/lock.ts';
import { cacheRoot, commitPart } from '../inputs/cache.ts';
import { DEFAULT_NETWORK_SETTINGS, describeFailure, httpClient, isMirrorFailure } from '../inputs/http.ts';
import { mergeIntoCatalog, type Catalog, type CatalogProvider } from '../publish/catalog.ts';
import { PublishError } from '../publish/errors.ts';
import { displayUrl, redactorFor } from '../publish/secrets.ts';
import type { PublishTarget } from '../publish/target.ts';
import { withDestination, type MirrorDestination } from './destination.ts';
import { readSourceCatalog, sourceUrl, type SourceBox } from './source.ts';

export interface MirrorOptions {
  /** `org/name` (resolved by VAGRANT_SERVER_URL) or a catalog URL. */
  source: string;
  target: PublishTarget;
  env?: NodeJS.ProcessEnv;
  /** Default: BOXSMITH_CACHE or ~/.cache/boxsmith; downloads in progress live in <cache>/mirror/. */
  cacheDir?: string;
  /** rclone targets: rclone's output goes to `<logsDir>/<run id>/mirror.log`. */
  logsDir: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface MirrorReport {
  source: string;
  name: string;
  target: string;
  versions: string[];
  /** Boxes downloaded and placed in this run. */
  copied: number;
  /** Boxes already in the tree with their checksum. */
  present: number;
  skippedVersions: string[];
  catalogUrl: string;
}

/** Where the architecture of a box from a catalog without one goes in the tree's paths. */
const UNKNOWN_ARCHITECTURE = 'unknown';

export async function mirrorBox(options: MirrorOptions): Promise<MirrorReport> {
  const env = options.env ?? process.env;
  const redactor = redactorFor(env);
  if (options.target.kind === 'rclone') for (const secret of options.target.remote.secrets) redactor.add(secret);
  const log = (line: string) => (options.log ?? console.log)(redactor.redact(line));
  const url = sourceUrl(options.source, env);
  log(`reading ${displayUrl(url)}`);
  const source = await readSourceCatalog(url, log);
  if (!source.versions.length) throw new PublishError(`mirror: ${displayUrl(url)} lists no version of ${source.name} to mirror`);
  const [org, boxName] = source.name.split('/') as [string, string];
  const report: MirrorReport = {
    source: displayUrl(url),
    name: source.name,
    target: '',
    versions: source.versions.map((v) => v.version),
    copied: 0,
    present: 0,
    skippedVersions: source.skipped,
    catalogUrl: '',
  };
  const cacheDir = path.join(options.cacheDir ?? cacheRoot(env), 'mirror');
  await withDestination({ target: options.target, org, boxName, logsDir: options.logsDir, redactor, log, ...(options.signal ? { signal: options.signal } : {}) }, async (destination) => {
    report.target = destination.shown;
    report.catalogUrl = `${destination.baseUrl}/${org}/${boxName}.json`;
    let catalog: Catalog | undefined = await destination.readCatalog();
    for (const version of source.versions) {
      const providers: CatalogProvider[] = [];
      for (const box of version.boxes) {
        const architecture = box.architecture ?? UNKNOWN_ARCHITECTURE;
        const relative = destination.tree.boxPath(version.version, box.provider, architecture);
        const sha256 = await placeBox(destination, box, relative, cacheDir, report, log, options.signal);
        const entry: CatalogProvider = { name: box.provider, url: `${destination.baseUrl}/${relative}`, checksum_type: 'sha256', checksum: sha256 };
        if (box.architecture) entry.architecture = box.architecture;
        providers.push(entry);
      }
      catalog = mergeIntoCatalog(catalog, { name: source.name, description: source.description, version: version.version, providers });
    }
    // Every box it names is in place: now the catalog.
    await destination.writeCatalog(catalog!);
    log(`wrote the catalog of ${source.name} with versions ${catalog!.versions.map((v) => v.version).join(', ')}`);
  });
  return report;
}

/** One box into the tree: skipped when it is there, else downloaded, verified and placed. Its SHA-256. */
async function placeBox(
  destination: MirrorDestination,
  box: SourceBox,
  relative: string,
  cacheDir: string,
  report: MirrorReport,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<string> {
  // Without the catalog's SHA-256 the tree's copy cannot be compared before downloading.
  if (box.checksum.algorithm === 'sha256' && (await destination.hasBox(relative, box.checksum.hex))) {
    log(`${relative}: already in the tree with its sha256`);
    report.present++;
    return box.checksum.hex;
  }
  const { file, size } = await downloadBox(box.url, box.checksum, cacheDir, log, signal);
  try {
    const sha256 = box.checksum.algorithm === 'sha256' ? box.checksum.hex : (await hashFile(file, 'sha256', signal)).hex;
    await destination.placeBox(file, relative, sha256, size);
    report.copied++;
    return sha256;
  } finally {
    await rm(file, { force: true });
  }
}

/** Downloads `url` into the cache (resuming a `.part` left there), verified against `checksum`. */
async function downloadBox(url: string, checksum: Checksum, cacheDir: string, log: (line: string) => void, signal?: AbortSignal): Promise<{ file: string; size: number }> {
  // Keyed by checksum: an interrupted download of the same box resumes, a different box never does.
  const dir = path.join(cacheDir, `${checksum.algorithm}-${checksum.hex}`);
  await mkdir(dir, { recursive: true });
  const entry = { dir, path: path.join(dir, 'box'), partPath: path.join(dir, 'box.part') };
  const settings = DEFAULT_NETWORK_SETTINGS;
  let download: VerifiedDownload;
  try {
    // Two mirrors of the same box share its .part: one downloads at a time.
    download = await withFileLock(path.join(dir, 'box.lock'), () => downloadVerified({
      url,
      partPath: entry.partPath,
      checksum,
      client: httpClient(settings),
      network: settings,
      ...(signal ? { signal } : {}),
      // Pre-signed download URLs (HCP's) carry their signature in the query: never shown.
      onWarning: (line) => log(line.split(url).join(displayUrl(url))),
      progressIntervalMs: 5000,
      onProgress: (progress) => {
        if (progress.received === 0 || progress.received === progress.total) return;
        log(`${displayUrl(url)}: ${(progress.received / 1048576).toFixed(1)}${progress.total ? ` of ${(progress.total / 1048576).toFixed(1)}` : ''} MiB${progress.resumedFrom ? ` (resumed at byte ${progress.resumedFrom})` : ''}`);
      },
    }), { ...(signal ? { signal } : {}) });
  } catch (error) {
    signal?.throwIfAborted();
    if (isMirrorFailure(error)) throw new PublishError(`mirror: could not download ${displayUrl(url)}: ${describeFailure(error, settings)}; run mirror again to resume`);
    throw error;
  }
  if (!download.verified) {
    throw new PublishError(`mirror: ${displayUrl(url)} has ${checksum.algorithm}:${download.hex}, but its catalog says ${formatChecksum(checksum)}: the box there is damaged or was replaced; nothing of it was mirrored`);
  }
  const { part } = download;
  await commitPart(entry);
  log(`downloaded and verified ${displayUrl(url)} (${formatChecksum(checksum)}${part.resumedFrom ? `, resumed at byte ${part.resumedFrom}` : ''})`);
  return { file: entry.path, size: part.size };
}

/** What a mirror did, for the command line. */
export function formatMirrorReport(report: MirrorReport): string {
  return [
    `mirrored ${report.name} from ${report.source} to ${report.target}`,
    `  versions: ${report.versions.join(', ')}`,
    `  boxes copied: ${report.copied}, already there: ${report.present}`,
    ...(report.skippedVersions.length ? [`  not mirrored: ${report.skippedVersions.join(', ')}`] : []),
    `  catalog: ${report.catalogUrl}`,
  ].join('\n');
}

