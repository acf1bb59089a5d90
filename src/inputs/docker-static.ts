// Docker's static binaries as a build input: the .tgz a definition's docker.static pins, kept in the
// input cache beside the ISOs (`<cache>/docker/sha256-<hex>/<file>`, verified, resumable, shared
// by every build) and uploaded into the guest by Packer, so the guest never downloads it: precise's
// curl and OpenSSL 1.0.1 never have to agree with download.docker.com's TLS.
//
//   ensureDockerStatic(spec)      the verified .tgz's path, from the cache or downloaded
//   dockerStaticUnavailable(spec) why a build could not get it now (the nightly planner asks)
//   fetchSha256(url)              the sha256 of what a URL serves now (`checksums` checks the pin with it)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dockerStaticFile } from '../definitions/load.ts';
import type { Definition } from '../definitions/schema.ts';
import { downloadToPart } from './download.ts';
import { DEFAULT_NETWORK_SETTINGS, describeFailure, httpClient, type NetworkSettings } from './http.ts';
import { ensureIso, isoUnavailable, type CachedInputKind, type EnsureIsoOptions, type EnsuredIso } from './iso.ts';

/** A definition's `docker.static`. */
export type DockerStaticSpec = NonNullable<Definition['docker']['static']>;


export const DOCKER_STATIC_INPUT: CachedInputKind = { folder: 'docker', noun: 'Docker static .tgz', cacheName: 'input cache' };

/** The .tgz as the input cache takes it: a file name, its URL, the pinned checksum. */
export function dockerStaticInput(spec: DockerStaticSpec): { file: string; urls: string[]; checksum: string } {
  return { file: dockerStaticFile(spec), urls: [spec.url], checksum: `sha256:${spec.sha256}` };
}

/** Whether a build could get the .tgz now (the planner asks): `undefined` when it can, else why not. */
export function dockerStaticUnavailable(spec: DockerStaticSpec, options: { cacheDir?: string; network?: Partial<NetworkSettings> } = {}): Promise<string | undefined> {
  return isoUnavailable(dockerStaticInput(spec), { ...options, kind: DOCKER_STATIC_INPUT });
}


/** The .tgz, verified against docker.static.sha256: from the cache, else downloaded into it. */
export function ensureDockerStatic(spec: DockerStaticSpec, options: Omit<EnsureIsoOptions, 'kind' | 'verifyChecksumUrl'> = {}): Promise<EnsuredIso> {
  return ensureIso(dockerStaticInput(spec), { ...options, kind: DOCKER_STATIC_INPUT });
}

/**
 * The sha256 (hex) of what `url` serves, downloaded into a temporary folder that is removed after;
 * never into the cache, which holds verified files only. Throws one line naming the URL.
 */
export async function fetchSha256(url: string, options: { signal?: AbortSignal; network?: Partial<NetworkSettings> } = {}): Promise<string> {
  const network: NetworkSettings = { ...DEFAULT_NETWORK_SETTINGS, ...options.network };
  const dir = await mkdtemp(path.join(tmpdir(), 'boxsmith-pin-'));
  try {
    const part = await downloadToPart({
      url,
      partPath: path.join(dir, 'download.part'),
      algorithm: 'sha256',
      // Only consulted for a 416 on a resumed .part; this one starts empty.
      expectedHex: '',
      client: httpClient(network),
      signal: options.signal,
      progressIntervalMs: 1000,
    });
    return part.hex;
  } catch (error) {
    options.signal?.throwIfAborted();
    throw new Error(`could not download ${url}: ${describeFailure(error, network)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
