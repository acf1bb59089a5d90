// Settings every command that runs builds shares: where outputs go, the version of a new build,
// the Packer version to render for.
import path from 'node:path';
import { detectPackerVersion, parsePackerVersion, type PackerVersion } from './packer/version.ts';
import { REPO_ROOT } from './repo-root.ts';

/** reports/: nightly run reports (BOXSMITH_REPORTS elsewhere). */
export const REPORTS_DIR = path.resolve(process.env.BOXSMITH_REPORTS ?? path.join(REPO_ROOT, 'reports'));

/** The Packer version to render for: given, installed, or (no Packer here) the modern layout. */
export function packerVersionFor(given: string | undefined): PackerVersion {
  if (given) return parsePackerVersion(given);
  return detectPackerVersion() ?? { version: '1.11.0', modern: true };
}

/** Where builds write: the repository's boxes/, build/work/ and logs/, or BOXSMITH_BOXES, BOXSMITH_WORK, BOXSMITH_LOGS. */
export function outputDirectories(env: NodeJS.ProcessEnv = process.env): { boxesDir: string; workRoot: string; logsDir: string } {
  return {
    boxesDir: path.resolve(env.BOXSMITH_BOXES ?? path.join(REPO_ROOT, 'boxes')),
    workRoot: path.resolve(env.BOXSMITH_WORK ?? path.join(REPO_ROOT, 'build', 'work')),
    logsDir: path.resolve(env.BOXSMITH_LOGS ?? path.join(REPO_ROOT, 'logs')),
  };
}

/** A Vagrant-sortable version from the time: 20261128.163000.0 */
export function defaultVersion(now = new Date()): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}.${iso.slice(11, 19).replace(/:/g, '')}.0`;
}
