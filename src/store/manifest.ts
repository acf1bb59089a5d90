// The package manifest beside a box (<provider>.packages.tsv): every package installed in it, one
// `name<TAB>version<TAB>architecture` a line, as manifest.sh took it in the guest at the end of the
// build; and what changed between two versions of a box.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { boxFiles, builtVersions, compareVersions, versionDirectory } from './box-store.ts';

export interface ManifestPackage {
  name: string;
  version: string;
  architecture: string;
}

/** A package whose version differs from the previous version's manifest; `from` absent: added, `to` absent: removed. */
export interface PackageChange {
  name: string;
  from?: string;
  to?: string;
}

// Debian policy's package names, versions ([epoch:]upstream[-revision]) and architectures.
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const PACKAGE_VERSION = /^(\d+:)?[A-Za-z0-9][A-Za-z0-9.+~:-]*$/;
const ARCHITECTURE = /^[a-z0-9][a-z0-9-]*$/;

/** Parses a manifest's text; a bad line is an error naming `file`:line. */
export function parseManifest(text: string, file: string): ManifestPackage[] {
  const packages: ManifestPackage[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, index) => {
    const where = `${file}:${index + 1}`;
    const fields = line.split('\t');
    if (fields.length !== 3) throw new Error(`${where}: expected name, version and architecture separated by tabs, found ${JSON.stringify(line.slice(0, 80))}`);
    const [name, version, architecture] = fields as [string, string, string];
    if (!PACKAGE_NAME.test(name)) throw new Error(`${where}: ${JSON.stringify(name)} is not a package name`);
    if (!PACKAGE_VERSION.test(version)) throw new Error(`${where}: ${JSON.stringify(version)} is not a version of ${name}`);
    if (!ARCHITECTURE.test(architecture)) throw new Error(`${where}: ${JSON.stringify(architecture)} is not an architecture (${name})`);
    packages.push({ name, version, architecture });
  });
  return packages;
}

/** Reads and parses a manifest file; unreadable or bad, the error names the file (and line). */
export function readManifest(file: string): ManifestPackage[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the package manifest ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseManifest(text, file);
}

/**
 * Packages keyed by name, or by name:architecture for a name installed for several architectures
 * (multiarch: libc6:amd64 and libc6:i386), each with its version.
 */
function byName(packages: ManifestPackage[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const { name } of packages) count.set(name, (count.get(name) ?? 0) + 1);
  return new Map(packages.map((p) => [count.get(p.name)! > 1 ? `${p.name}:${p.architecture}` : p.name, p.version]));
}

/** What differs from `previous` to `current`, sorted by name: added (no `from`), removed (no `to`), changed. */
export function packageChanges(previous: ManifestPackage[], current: ManifestPackage[]): PackageChange[] {
  const before = byName(previous);
  const after = byName(current);
  const changes: PackageChange[] = [];
  for (const [name, to] of after) {
    const from = before.get(name);
    if (from === undefined) changes.push({ name, to });
    else if (from !== to) changes.push({ name, from, to });
  }
  for (const [name, from] of before) if (!after.has(name)) changes.push({ name, from });
  return changes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The package changes of a box x provider's `version` since the newest earlier version built for
 * that provider, or undefined when there is no earlier version, or either lacks a manifest (boxes
 * built before manifests existed). A manifest that is there but bad is an error naming file:line.
 */
export function packageChangesSincePrevious(
  boxesDir: string,
  box: { org: string; boxName: string; boxProvider: string; version: string },
): { since: string; changes: PackageChange[] } | undefined {
  const { org, boxName, boxProvider, version } = box;
  const manifest = (v: string) => boxFiles(versionDirectory(boxesDir, org, boxName, v), boxProvider).packageManifest;
  const current = manifest(version);
  if (!existsSync(current)) return undefined;
  // Newest first: the first one older than `version`.
  const since = builtVersions(boxesDir, org, boxName, boxProvider).find((v) => compareVersions(v, version) < 0);
  if (since === undefined || !existsSync(manifest(since))) return undefined;
  return { since, changes: packageChanges(readManifest(manifest(since)), readManifest(current)) };
}
