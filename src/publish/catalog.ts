// Vagrant box catalogs ("box metadata"): the JSON that `vagrant box add NAME` and
// `vagrant box add URL` read. One catalog per box lists its versions, each with one entry per
// provider and architecture. Merging keeps what other publishes put there; retention keeps the
// newest versions.
//
// How each Vagrant picks a provider entry (cited from the sources; docs/hosting.md says the same):
//   - Vagrant >= 2.4 (hashicorp/vagrant v2.4.9) matches the host's architecture:
//     lib/vagrant/box_metadata.rb:165-219 `Version#provider` takes the entry whose `architecture`
//     equals Util::Platform.architecture (lib/vagrant/util/platform.rb:23-41: amd64, i386, arm64,
//     or VAGRANT_HOST_ARCHITECTURE); failing that, one with architecture "unknown" and
//     default_architecture; failing that, a provider's single entry only if it has no
//     default_architecture key (`architecture_support?`, box_metadata.rb:276-278). So an amd64 entry
//     is never handed to an arm64 host. `vagrant box outdated/update` ask for the installed box's
//     own architecture (lib/vagrant/box.rb:203-207).
//   - Vagrant 2.3 (Debian 12's 2.3.4) ignores both keys and keeps one entry per provider name, the
//     LAST one listed (its lib/vagrant/box_metadata.rb:102-110, `Hash[[name, entry], ...]`): so the
//     default architecture is listed last of its provider.
import { compareVersions } from '../store/box-store.ts';
import { PublishError } from './errors.ts';

export interface CatalogProvider {
  name: string;
  url: string;
  checksum_type?: string;
  checksum?: string;
  /** Vagrant >= 2.4 picks the entry for the host's architecture; older Vagrant ignores these keys. */
  architecture?: string;
  default_architecture?: boolean;
  [key: string]: unknown;
}

export interface CatalogVersion {
  version: string;
  providers: CatalogProvider[];
  [key: string]: unknown;
}

export interface Catalog {
  name: string;
  description?: string;
  versions: CatalogVersion[];
  [key: string]: unknown;
}


/** Reads a catalog written by boxsmith or anyone else; refuses what Vagrant could not read either. */
export function parseCatalog(text: string, source: string): Catalog {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new PublishError(`${source} is not valid JSON (${(error as Error).message}); fix or remove it before publishing`);
  }
  const problems: string[] = [];
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject(data)) throw new PublishError(`${source} is not a Vagrant box catalog (a JSON object with name and versions)`);
  if (typeof data.name !== 'string') problems.push('"name" is not a string');
  if (!Array.isArray(data.versions)) problems.push('"versions" is not a list');
  else {
    data.versions.forEach((version: unknown, index) => {
      if (!isObject(version) || typeof version.version !== 'string') problems.push(`versions[${index}] has no "version" string`);
      else if (!Array.isArray(version.providers)) problems.push(`versions[${index}] (${version.version}) has no "providers" list`);
      else {
        version.providers.forEach((provider: unknown, providerIndex) => {
          if (!isObject(provider) || typeof provider.name !== 'string' || typeof provider.url !== 'string') {
            problems.push(`versions[${index}].providers[${providerIndex}] needs "name" and "url" strings`);
          }
        });
      }
    });
  }
  if (problems.length) throw new PublishError(`${source} is not a Vagrant box catalog: ${problems.join('; ')}`);
  return data as Catalog;
}

export interface CatalogAddition {
  name: string;
  description: string;
  version: string;
  providers: CatalogProvider[];
}

/**
 * The catalog with one version's providers added: an entry of the same provider and architecture
 * is replaced, every other version and provider is kept. Versions are listed newest first.
 */
export function mergeIntoCatalog(existing: Catalog | undefined, addition: CatalogAddition): Catalog {
  if (existing && existing.name !== addition.name) {
    throw new PublishError(`the catalog there is for ${existing.name}, not ${addition.name}`);
  }
  const versions = (existing?.versions ?? []).map((entry) => ({ ...entry, providers: [...entry.providers] }));
  let entry = versions.find((candidate) => candidate.version === addition.version);
  if (!entry) {
    entry = { version: addition.version, providers: [] };
    versions.push(entry);
  }
  for (const provider of addition.providers) {
    entry.providers = entry.providers.filter((other) => !(other.name === provider.name && (other.architecture ?? '') === (provider.architecture ?? '')));
    const sameProvider = entry.providers.filter((other) => other.name === provider.name);
    // One default architecture per provider: the one already marked stays so, else this one.
    const defaultArchitecture = !sameProvider.some((other) => other.default_architecture === true);
    entry.providers.push({ ...provider, default_architecture: defaultArchitecture });
  }
  entry.providers.sort(providerOrder);
  // The other versions as they are, but for 2.3 with each provider's default last (a catalog
  // published before boxsmith kept that order).
  for (const other of versions) if (other !== entry) other.providers = defaultArchitectureLast(other.providers);
  versions.sort((a, b) => compareVersions(b.version, a.version));
  return { ...(existing ?? {}), name: addition.name, description: addition.description, versions };
}

/**
 * By provider name; within one provider the default architecture last, which is the one Vagrant
 * 2.3 (one entry per name, the last) takes; then by architecture.
 */
function providerOrder(a: CatalogProvider, b: CatalogProvider): number {
  return (
    a.name.localeCompare(b.name) ||
    Number(a.default_architecture === true) - Number(b.default_architecture === true) ||
    (a.architecture ?? '').localeCompare(b.architecture ?? '')
  );
}

/** The same entries in the same places, except that within each provider the default comes last. */
function defaultArchitectureLast(providers: CatalogProvider[]): CatalogProvider[] {
  const byName = new Map<string, CatalogProvider[]>();
  for (const provider of providers) byName.set(provider.name, [...(byName.get(provider.name) ?? []), provider]);
  for (const [name, entries] of byName) {
    byName.set(name, [...entries.filter((entry) => entry.default_architecture !== true), ...entries.filter((entry) => entry.default_architecture === true)]);
  }
  return providers.map((provider) => byName.get(provider.name)!.shift()!);
}

/** The catalog with only its `keep` newest versions, and the versions it dropped. */
export function applyRetention(catalog: Catalog, keep: number): { catalog: Catalog; dropped: CatalogVersion[] } {
  if (!Number.isInteger(keep) || keep < 1) throw new PublishError(`keep must be a whole number >= 1, not ${keep}`);
  const sorted = [...catalog.versions].sort((a, b) => compareVersions(b.version, a.version));
  return { catalog: { ...catalog, versions: sorted.slice(0, keep) }, dropped: sorted.slice(keep) };
}

export function formatCatalog(catalog: Catalog): string {
  return `${JSON.stringify(catalog, null, 2)}\n`;
}
