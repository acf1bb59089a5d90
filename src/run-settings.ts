// Settings every command that runs builds shares: where outputs go, the version of a new build,
// the Packer version to render for.
import path from 'node:path';
import { claimFolder } from './files/owned-folder.ts';
import { cacheRoot } from './inputs/cache.ts';
import { detectPackerVersion, parsePackerVersion, type PackerVersion } from './packer/version.ts';
import { REPO_ROOT } from './repo-root.ts';

/** reports/: nightly run reports (BOXSMITH_REPORTS elsewhere). */
export const REPORTS_DIR = path.resolve(process.env.BOXSMITH_REPORTS ?? path.join(REPO_ROOT, 'reports'));

/** The Packer version to render for: given, installed, or (no Packer here) the modern layout. */
export function packerVersionFor(given: string | undefined): PackerVersion {
  if (given) return parsePackerVersion(given);
  return detectPackerVersion() ?? { version: '1.11.0', modern: true };
}

/** Where builds write: the repository's boxes/, work/ and logs/, or BOXSMITH_BOXES, BOXSMITH_WORK, BOXSMITH_LOGS. */
export function outputDirectories(env: NodeJS.ProcessEnv = process.env): { boxesDir: string; workRoot: string; logsDir: string } {
  return {
    boxesDir: path.resolve(env.BOXSMITH_BOXES ?? path.join(REPO_ROOT, 'boxes')),
    workRoot: path.resolve(env.BOXSMITH_WORK ?? path.join(REPO_ROOT, 'work')),
    logsDir: path.resolve(env.BOXSMITH_LOGS ?? path.join(REPO_ROOT, 'logs')),
  };
}

/** Each output folder's variable, and the project's (or host's) own default, boxsmith's by design. */
const OUTPUT_FOLDERS = {
  boxes: { variable: 'BOXSMITH_BOXES', byDesign: () => path.join(REPO_ROOT, 'boxes') },
  work: { variable: 'BOXSMITH_WORK', byDesign: () => path.join(REPO_ROOT, 'work') },
  logs: { variable: 'BOXSMITH_LOGS', byDesign: () => path.join(REPO_ROOT, 'logs') },
  cache: { variable: 'BOXSMITH_CACHE', byDesign: () => cacheRoot({}) },
  reports: { variable: 'BOXSMITH_REPORTS', byDesign: () => path.join(REPO_ROOT, 'reports') },
} as const;

/**
 * Makes sure, before a run does anything, that each folder it will write is boxsmith's (see
 * src/files/owned-folder.ts); throws FolderOwnershipError naming the variable that chose it.
 * `checkOnly` (dry runs) refuses the same way but creates nothing.
 */
export function claimOutputFolders(
  folders: Partial<Record<keyof typeof OUTPUT_FOLDERS, string>>,
  { env = process.env, checkOnly = false }: { env?: NodeJS.ProcessEnv; checkOnly?: boolean } = {},
): void {
  const requests = (Object.entries(folders) as [keyof typeof OUTPUT_FOLDERS, string][]).map(([kind, dir]) => {
    const { variable, byDesign } = OUTPUT_FOLDERS[kind];
    const resolved = path.resolve(dir);
    const given = env[variable];
    const namedBy = given !== undefined && path.resolve(given) === resolved ? `${variable}=` : `the ${kind} folder`;
    return { dir: resolved, kind, namedBy, byDesign: resolved === byDesign() };
  });
  // All are checked before any is created: one refused folder leaves no new ones behind.
  for (const request of requests) claimFolder(request, { checkOnly: true });
  if (!checkOnly) for (const request of requests) claimFolder(request);
}

/** A Vagrant-sortable version from the time: 20261128.163000.0 */
export function defaultVersion(now = new Date()): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}.${iso.slice(11, 19).replace(/:/g, '')}.0`;
}
