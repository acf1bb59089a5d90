// The ISO input of installer boxes: a cache shared by every build on the host, keyed by checksum
// (`<cache>/iso/<algorithm>-<hex>/<file>`), filled from the definition's mirrors in order with
// resumable downloads, and trusted only once verified against the pinned checksum.
//
//   ensureIso(iso)            the verified ISO's path, from the cache or downloaded
//   fetchChecksum(url, file)  what a release's SHA256SUMS says about a file
//   checkPinnedChecksum(iso)  the pinned checksum against the published one (`checksums --refresh`)
import type { BigIntStats } from 'node:fs';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Definition } from '../definitions/schema.ts';
import { runCaptured } from '../exec/captured.ts';
import {
  commitPart,
  hasVerifiedSidecar,
  cacheRoot,
  isoCacheEntry,
  removeSidecar,
  sameFileState,
  writeSidecar,
  type IsoCacheEntry,
} from './cache.ts';
import { formatChecksum, hashFile, parseChecksum, parseChecksumFile, type Checksum } from './checksum.ts';
import type { DownloadProgress } from './download.ts';
import { downloadVerified, type VerifiedDownload } from './verified-download.ts';
import { IsoChecksumMismatchError, IsoUnavailableError, PinnedChecksumMismatchError, type MirrorFailure } from './errors.ts';
import { DEFAULT_NETWORK_SETTINGS, describeFailure, httpClient, isMirrorFailure, type NetworkSettings } from './http.ts';
import { withFileLock } from '../files/lock.ts';

export { cacheRoot } from './cache.ts';
export { ChecksumFileError, parseChecksum, parseChecksumFile, type Checksum, type ChecksumAlgorithm } from './checksum.ts';
export { IsoChecksumMismatchError, IsoUnavailableError, PinnedChecksumMismatchError, type MirrorFailure } from './errors.ts';
export { DEFAULT_NETWORK_SETTINGS, type NetworkSettings } from './http.ts';

/** A definition's `base.iso`. */
export type IsoSpec = NonNullable<Definition['base']['iso']>;

export type IsoProgress = DownloadProgress;

export interface EnsureIsoOptions {
  /** The cache folder; `BOXSMITH_CACHE` or `~/.cache/boxsmith` by default. */
  cacheDir?: string;
  /** Cancels a download; the `.part` file stays for the next attempt to resume. */
  signal?: AbortSignal;
  /** Download progress, at most once per `progressIntervalMs` plus the first and last report. */
  onProgress?: (progress: IsoProgress) => void;
  progressIntervalMs?: number;
  /** Things worth telling the user that do not stop the build: a failed mirror, an unreachable checksum_url. */
  onWarning?: (message: string) => void;
  /**
   * Also compare the pinned checksum with the one published at `checksum_url`: a difference is an
   * error (PinnedChecksumMismatchError); an unreachable checksum_url only a warning.
   */
  verifyChecksumUrl?: boolean;
  /** Timeouts and retries; see DEFAULT_NETWORK_SETTINGS. */
  network?: Partial<NetworkSettings>;
  /** Another pinned input kept the same way (Docker's static .tgz): its cache folder and its name in messages. */
  kind?: CachedInputKind;
}

/** An input the cache keeps: its folder under the cache and what messages call it. */
export interface CachedInputKind {
  folder: string;
  noun: string;
  /** The cache as the planner's reasons name it. */
  cacheName: string;
}

export const ISO_INPUT: CachedInputKind = { folder: 'iso', noun: 'ISO', cacheName: 'ISO cache' };

export interface EnsuredIso {
  /** The verified ISO in the cache. */
  path: string;
  /** The checksum it was verified against, e.g. `sha256:<hex>`. */
  checksum: string;
  source: 'cache' | 'download';
  /** The URL it was downloaded from (source `download` only). */
  url?: string;
}

/** Where the cache keeps (or will keep) this ISO (or other input of `kind`). */
export function isoCachePath(iso: Pick<IsoSpec, 'file' | 'checksum'>, cacheDir = cacheRoot(), kind: CachedInputKind = ISO_INPUT): string {
  return isoCacheEntry(iso.file, parseChecksum(iso.checksum), cacheDir, kind.folder).path;
}

/**
 * The ISO, verified against its pinned checksum: from the cache when it is there, else downloaded
 * from `iso.urls` in order (resuming an interrupted download). Throws IsoUnavailableError when no
 * URL delivers it (its message says where to put the file by hand) and IsoChecksumMismatchError
 * when a download is not the pinned file.
 */
export async function ensureIso(iso: IsoSpec, options: EnsureIsoOptions = {}): Promise<EnsuredIso> {
  const checksum = parseChecksum(iso.checksum);
  const kind = options.kind ?? ISO_INPUT;
  const entry = isoCacheEntry(iso.file, checksum, options.cacheDir ?? cacheRoot(), kind.folder);
  const network: NetworkSettings = { ...DEFAULT_NETWORK_SETTINGS, ...options.network };
  const warn = options.onWarning ?? (() => {});
  const { signal } = options;
  signal?.throwIfAborted();

  if (options.verifyChecksumUrl) await crossCheckPinnedChecksum(iso, checksum, network, warn, signal);

  const fromCache: EnsuredIso = { path: entry.path, checksum: formatChecksum(checksum), source: 'cache' };
  // The common case takes no lock: a sidecar that still matches the file.
  if (await hasVerifiedSidecar(entry, checksum)) return fromCache;

  await mkdir(entry.dir, { recursive: true });
  try {
    return await withFileLock(
      entry.lockPath,
      async () => {
        if (await verifyCachedFile(entry, checksum, kind, warn, signal)) return fromCache;
        return await download(iso, entry, checksum, network, options);
      },
      {
        signal,
        onWait: (owner) =>
          warn(
            `waiting for ${owner ? `process ${owner.pid} on ${owner.host}` : 'another process'}, ` +
              `which is fetching ${iso.file} into the cache (${entry.lockPath})`,
          ),
        onTakeOver: (owner) =>
          warn(`took over ${entry.lockPath}: ${owner ? `process ${owner.pid} on ${owner.host}, which held it, is gone` : 'it names no owner and is older than 10 s'}`),
      },
    );
  } catch (error) {
    // A rejected download leaves nothing behind: drop the entry's folder when it is empty.
    if (error instanceof IsoChecksumMismatchError) await rmdir(entry.dir).catch(() => {});
    throw error;
  }
}

/**
 * Whether the cache holds the ISO: trusted through its sidecar, or hashed (a file copied in by
 * hand, or changed since it was verified). A file that does not match is removed.
 */
async function verifyCachedFile(
  entry: IsoCacheEntry,
  checksum: Checksum,
  kind: CachedInputKind,
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<boolean> {
  // Another process may have finished it while this one waited for the lock.
  if (await hasVerifiedSidecar(entry, checksum)) return true;
  let before: BigIntStats;
  try {
    before = await stat(entry.path, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  const actual = await hashFile(entry.path, checksum.algorithm, signal);
  if (!sameFileState(before, await stat(entry.path, { bigint: true }))) {
    throw new Error(`${entry.path} changed while it was being verified: is something else writing into the cache?`);
  }
  if (actual.hex === checksum.hex) {
    await writeSidecar(entry, checksum, before);
    return true;
  }
  warn(
    `${entry.path} is not the ${kind.noun} the definition pins (expected ${formatChecksum(checksum)}, ` +
      `it is ${checksum.algorithm}:${actual.hex}): removed, fetching it again`,
  );
  await removeSidecar(entry);
  await rm(entry.path, { force: true });
  return false;
}

async function download(
  iso: IsoSpec,
  entry: IsoCacheEntry,
  checksum: Checksum,
  network: NetworkSettings,
  options: EnsureIsoOptions,
): Promise<EnsuredIso> {
  const { signal } = options;
  const client = httpClient(network);
  const failures: MirrorFailure[] = [];
  for (const [index, url] of iso.urls.entries()) {
    let download: VerifiedDownload;
    try {
      download = await downloadVerified({
        url,
        partPath: entry.partPath,
        checksum,
        client,
        network,
        signal,
        onProgress: options.onProgress,
        onWarning: options.onWarning,
        progressIntervalMs: options.progressIntervalMs ?? 250,
      });
    } catch (error) {
      // Cancelled: stop here and keep the .part for the next attempt to resume.
      signal?.throwIfAborted();
      // A local problem (disk full, permissions) is not solved by another mirror.
      if (!isMirrorFailure(error)) throw error;
      const reason = describeFailure(error, network);
      failures.push({ url, reason });
      if (index < iso.urls.length - 1) options.onWarning?.(`${url}: ${reason}; trying the next URL`);
      continue;
    }
    if (!download.verified) {
      // A mismatch is not an outage to route around: mirrors serve identical bytes, so it almost
      // always means the pinned checksum is outdated, and every other mirror would repeat the verdict.
      throw new IsoChecksumMismatchError(iso.file, url, formatChecksum(checksum), `${checksum.algorithm}:${download.hex}`, iso.checksum_url);
    }
    await commitPart(entry);
    await writeSidecar(entry, checksum, await stat(entry.path, { bigint: true }));
    return { path: entry.path, checksum: formatChecksum(checksum), source: 'download', url };
  }
  throw new IsoUnavailableError(iso.file, formatChecksum(checksum), entry.path, failures, (options.kind ?? ISO_INPUT).noun);
}

export interface FetchChecksumOptions {
  signal?: AbortSignal;
  network?: Partial<NetworkSettings>;
}

async function fetchBytes(url: string, options: FetchChecksumOptions): Promise<Buffer> {
  const { signal } = options;
  return new URL(url).protocol === 'file:'
    ? await readFile(fileURLToPath(url), { signal })
    : await httpClient({ ...DEFAULT_NETWORK_SETTINGS, ...options.network })(url, { signal }).buffer();
}

/** The checksum (`<algorithm>:<hex>`) that the checksum file at `checksumUrl` gives for `fileName`. */
export async function fetchChecksum(checksumUrl: string, fileName: string, options: FetchChecksumOptions = {}): Promise<string> {
  return parseChecksumFile((await fetchBytes(checksumUrl, options)).toString('utf8'), fileName, checksumUrl);
}

/**
 * Like fetchChecksum, but only from a checksum file whose detached signature (`<checksumUrl>.gpg`,
 * as Ubuntu publishes SHA256SUMS.gpg) gpgv verifies with `keyring`.
 */
export async function fetchSignedChecksum(checksumUrl: string, keyring: string, fileName: string, options: FetchChecksumOptions = {}): Promise<string> {
  if (!existsSync(keyring)) {
    throw new Error(`the keyring ${keyring} that signs ${checksumUrl} is not installed (setup/install.sh installs the package providing it)`);
  }
  const signatureUrl = `${checksumUrl}.gpg`;
  const text = await fetchBytes(checksumUrl, options);
  let signature: Buffer;
  try {
    signature = await fetchBytes(signatureUrl, options);
  } catch (error) {
    throw new Error(`no signature for ${checksumUrl} (${signatureUrl}: ${(error as Error).message}): an unsigned checksum file is not trusted`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'boxsmith-sums-'));
  try {
    await writeFile(path.join(dir, 'sums'), text);
    await writeFile(path.join(dir, 'sums.gpg'), signature);
    const gpgv = await runCaptured('gpgv', ['--keyring', keyring, path.join(dir, 'sums.gpg'), path.join(dir, 'sums')], { timeoutMs: 60_000 });
    if (gpgv.exitCode !== 0) {
      const said = gpgv.stderr.split('\n').filter((line) => /BAD|bad|No public key|no valid|not/.test(line))[0] ?? gpgv.stderr.trim().split('\n').at(-1);
      throw new Error(`${signatureUrl} does not verify ${checksumUrl} with ${keyring}${said ? ` (${said.replace(/^gpgv: /, '')})` : ''}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return parseChecksumFile(text.toString('utf8'), fileName, checksumUrl);
}

export interface PinnedChecksumCheck {
  /** As pinned in the definition, e.g. `sha256:<hex>`. */
  pinned: string;
  /** As published at `checksum_url`. */
  published: string;
  matches: boolean;
}

/** The pinned checksum next to the published one, for `boxsmith checksums --refresh`. Throws when it cannot fetch it. */
export async function checkPinnedChecksum(iso: IsoSpec, options: FetchChecksumOptions = {}): Promise<PinnedChecksumCheck> {
  if (!iso.checksum_url) throw new Error(`${iso.file} has no checksum_url to check its pinned checksum against`);
  if (!iso.checksum_keyring) throw new Error(`${iso.file} has no checksum_keyring: its checksum file's signature cannot be checked`);
  const pinned = formatChecksum(parseChecksum(iso.checksum));
  const published = await fetchSignedChecksum(iso.checksum_url, iso.checksum_keyring, iso.file, options);
  return { pinned, published, matches: published === pinned };
}

async function crossCheckPinnedChecksum(
  iso: IsoSpec,
  pinned: Checksum,
  network: NetworkSettings,
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  if (!iso.checksum_url) {
    warn(`${iso.file} has no checksum_url: its pinned checksum was not cross-checked`);
    return;
  }
  let published: Checksum;
  try {
    published = parseChecksum(await fetchChecksum(iso.checksum_url, iso.file, { signal, network }));
  } catch (error) {
    signal?.throwIfAborted();
    warn(`could not cross-check the pinned checksum of ${iso.file} with ${iso.checksum_url}: ${describeFailure(error, network)}`);
    return;
  }
  if (published.algorithm !== pinned.algorithm) {
    warn(
      `${iso.checksum_url} publishes a ${published.algorithm} checksum of ${iso.file} and the definition pins ` +
        `a ${pinned.algorithm} one: not compared`,
    );
    return;
  }
  if (published.hex !== pinned.hex) {
    throw new PinnedChecksumMismatchError(iso.file, formatChecksum(pinned), formatChecksum(published), iso.checksum_url);
  }
}

/** Whether a build could get the ISO (or input of `kind`) now: `undefined` when it can, else why not, in one line. */
export async function isoUnavailable(
  iso: Pick<IsoSpec, 'file' | 'urls' | 'checksum'>,
  options: { cacheDir?: string; network?: Partial<NetworkSettings>; kind?: CachedInputKind } = {},
): Promise<string | undefined> {
  const kind = options.kind ?? ISO_INPUT;
  const cachePath = isoCachePath(iso, options.cacheDir ?? cacheRoot(), kind);
  // A file there is used once it hashes right; a wrong one is the build's to report.
  if (existsSync(cachePath)) return undefined;
  // A planner's question, not a download: short limits, one retry.
  const network: NetworkSettings = { ...DEFAULT_NETWORK_SETTINGS, connectTimeoutMs: 10_000, responseTimeoutMs: 15_000, retries: 1, ...options.network };
  const client = httpClient(network);
  const failures: string[] = [];
  for (const url of iso.urls) {
    if (url.startsWith('file://')) {
      if (existsSync(fileURLToPath(url))) return undefined;
      failures.push(`${url}: no such file`);
      continue;
    }
    try {
      await client.head(url);
      return undefined;
    } catch (error) {
      failures.push(`${url}: ${describeFailure(error, network)}`);
    }
  }
  return `its ${kind.noun} ${iso.file} is not in the ${kind.cacheName} and ${failures.length ? `no URL serves it (${failures.join('; ')})` : 'the definition lists no URL'}; to supply it by hand, copy it to ${cachePath}`;
}
