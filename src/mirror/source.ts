// The catalog a mirror copies from: found by name the way Vagrant finds it, or at a URL, and read
// in either of the two shapes boxes are listed in.
//
// By name, Vagrant 2.3.4 expands `org/name` to `#{server_url}/org/name`
// (lib/vagrant/action/builtin/box_add.rb, "If we received a shorthand URL"), where server_url is
// VAGRANT_SERVER_URL, else config.vm.box_server_url, else DEFAULT_SERVER_URL
// "https://vagrantcloud.com/api/v2/vagrant" (lib/vagrant/shared_helpers.rb, Vagrant.server_url),
// and asks for it with `Accept: application/json`. The two shapes:
//   - Vagrant's box metadata (that URL's answer, and every static catalog, boxsmith's included):
//     {name, description, versions: [{version, status?, providers: [{name, url, checksum_type,
//     checksum, architecture?, default_architecture?}]}]};
//   - the Vagrant Cloud API's box (GET /api/v2/box/:org/:name): {tag, description_short, versions:
//     [{version, status, providers: [{name, download_url, checksum_type, checksum, architecture?}]}]}.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DEFAULT_NETWORK_SETTINGS, describeFailure, httpClient } from '../inputs/http.ts';
import { CHECKSUM_ALGORITHMS, type Checksum, type ChecksumAlgorithm } from '../inputs/checksum.ts';
import { PublishError } from '../publish/errors.ts';
import { displayUrl } from '../publish/secrets.ts';

/** Vagrant's own default (lib/vagrant/shared_helpers.rb DEFAULT_SERVER_URL). */
export const DEFAULT_VAGRANT_SERVER_URL = 'https://vagrantcloud.com/api/v2/vagrant';

export interface SourceBox {
  provider: string;
  /** Absent in catalogs written before Vagrant 2.4. */
  architecture?: string;
  url: string;
  checksum: Checksum;
}

export interface SourceVersion {
  version: string;
  boxes: SourceBox[];
}

export interface SourceCatalog {
  /** Where it was read. */
  url: string;
  /** `org/name`. */
  name: string;
  description: string;
  versions: SourceVersion[];
  /** Versions not copied and why (unreleased, revoked). */
  skipped: string[];
}

const BOX_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The catalog URL for `org/name` (by VAGRANT_SERVER_URL, as Vagrant resolves it) or a URL given. */
export function sourceUrl(source: string, env: NodeJS.ProcessEnv = process.env): string {
  if (BOX_NAME.test(source)) return `${(env.VAGRANT_SERVER_URL || DEFAULT_VAGRANT_SERVER_URL).replace(/\/+$/, '')}/${source}`;
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new PublishError(`mirror: "${source}" is neither a box name (org/name) nor a catalog URL`);
  }
  if (!['http:', 'https:', 'file:'].includes(url.protocol)) throw new PublishError(`mirror: ${displayUrl(source)} must be an http, https or file URL`);
  return url.href;
}

/** Reads and checks the catalog; throws PublishError naming the URL and what is wrong. */
export async function readSourceCatalog(url: string, log: (line: string) => void): Promise<SourceCatalog> {
  const text = await fetchCatalog(url);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new PublishError(`mirror: ${displayUrl(url)} is not a box catalog (not JSON)`);
  }
  return parseSourceCatalog(data, url, log);
}

async function fetchCatalog(url: string): Promise<string> {
  if (url.startsWith('file:')) {
    try {
      return await readFile(fileURLToPath(url), 'utf8');
    } catch (error) {
      throw new PublishError(`mirror: cannot read ${fileURLToPath(url)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  try {
    return await httpClient(DEFAULT_NETWORK_SETTINGS)(url, { headers: { accept: 'application/json' } }).text();
  } catch (error) {
    throw new PublishError(`mirror: could not read the catalog ${displayUrl(url)}: ${describeFailure(error, DEFAULT_NETWORK_SETTINGS)}`);
  }
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

export function parseSourceCatalog(data: unknown, url: string, log: (line: string) => void = () => {}): SourceCatalog {
  const where = displayUrl(url);
  if (!isObject(data) || !Array.isArray(data.versions)) throw new PublishError(`mirror: ${where} is not a box catalog (no "versions" list)`);
  // Box metadata names the box in `name`; the API's box JSON in `tag` (its `name` is the box's short name).
  const name = typeof data.tag === 'string' ? data.tag : data.name;
  if (typeof name !== 'string' || !BOX_NAME.test(name)) throw new PublishError(`mirror: ${where} names no box as org/name (its "name" or "tag")`);
  const description = [data.description, data.description_markdown, data.short_description, data.description_short].find((value) => typeof value === 'string') as string | undefined;
  const catalog: SourceCatalog = { url, name, description: description ?? '', versions: [], skipped: [] };
  data.versions.forEach((version: unknown, index) => {
    if (!isObject(version) || typeof version.version !== 'string' || !Array.isArray(version.providers)) {
      throw new PublishError(`mirror: ${where}: versions[${index}] has no "version" and "providers"`);
    }
    // The API lists unreleased and revoked versions too; Vagrant offers users only active ones.
    if (typeof version.status === 'string' && version.status !== 'active') {
      catalog.skipped.push(`${version.version} (${version.status})`);
      log(`${version.version} is ${version.status} there: not mirrored`);
      return;
    }
    const boxes = version.providers.map((provider: unknown, providerIndex) => sourceBox(provider, `${where}: ${version.version} providers[${providerIndex}]`));
    catalog.versions.push({ version: version.version, boxes });
  });
  return catalog;
}

function sourceBox(provider: unknown, where: string): SourceBox {
  if (!isObject(provider) || typeof provider.name !== 'string') throw new PublishError(`mirror: ${where} has no provider "name"`);
  const url = typeof provider.url === 'string' ? provider.url : provider.download_url;
  if (typeof url !== 'string') throw new PublishError(`mirror: ${where} (${provider.name}) has no "url" or "download_url"`);
  const type = typeof provider.checksum_type === 'string' ? provider.checksum_type.toLowerCase() : undefined;
  const hex = typeof provider.checksum === 'string' ? provider.checksum.toLowerCase() : undefined;
  // Nothing to verify the copy against is no copy to trust.
  if (!type || !hex) throw new PublishError(`mirror: ${where} (${provider.name}) has no checksum: the box cannot be verified, so it is not mirrored`);
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(type) || !/^[0-9a-f]+$/.test(hex)) {
    throw new PublishError(`mirror: ${where} (${provider.name}) has checksum type "${type}"; boxsmith verifies ${CHECKSUM_ALGORITHMS.join(', ')}`);
  }
  const box: SourceBox = { provider: provider.name, url, checksum: { algorithm: type as ChecksumAlgorithm, hex } };
  if (typeof provider.architecture === 'string') box.architecture = provider.architecture;
  return box;
}
