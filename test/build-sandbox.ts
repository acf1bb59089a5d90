// A build as `boxsmith build` runs it, with the stand-in packer (test/fixtures/build/packer; a
// real build needs a VM and minutes): a copy of the definitions plus installer boxes (`standin`,
// and any others named) whose ISO is a small local file, and every folder a build writes in a
// temporary folder.
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boxsmith, REPO_ROOT, tempDir } from './helpers.ts';

export const STANDIN_PACKER = path.join(REPO_ROOT, 'test/fixtures/build/packer');
/** Where the stand-in boxes' archive is: a local port that refuses connections. */
export const UNREACHABLE_ARCHIVE = '127.0.0.1:1';

/** Every folder a build reads definitions from or writes to, below `root`; TCG; CI's plain output. */
export function sandboxEnvironment(root: string, definitions: string) {
  return {
    BOXSMITH_DEFINITIONS: definitions,
    BOXSMITH_BOXES: path.join(root, 'boxes'),
    BOXSMITH_WORK: path.join(root, 'work'),
    BOXSMITH_LOGS: path.join(root, 'logs'),
    BOXSMITH_CACHE: path.join(root, 'cache'),
    BOXSMITH_REPORTS: path.join(root, 'reports'),
    BOXSMITH_ACCEL: 'tcg',
    CI: 'true',
  };
}

export function buildSandbox(prefix = 'boxsmith-test-', boxes: string[] = ['standin']) {
  const root = tempDir(prefix);
  const definitions = path.join(root, 'definitions');
  cpSync(path.join(REPO_ROOT, 'definitions'), definitions, { recursive: true });
  const iso = path.join(root, 'standin.iso');
  writeFileSync(iso, 'not really an installer\n');
  const isoSha256 = createHash('sha256').update(readFileSync(iso)).digest('hex');
  for (const name of boxes) {
    writeFileSync(
      path.join(definitions, `${name}.yaml`),
      // The archive at a port nobody listens on: the build's archive state fails at once, offline.
      ['extends: ubuntu-14.04', `box_name: ${name}-amd64`, 'providers: [qemu]', 'base:', '  iso:', '    file: standin.iso', `    urls: ["file://${iso}"]`, `    checksum: sha256:${isoSha256}`,
        '  installer:', '    preseed:', `      mirror_host: ${UNREACHABLE_ARCHIVE}`, ''].join('\n'),
    );
  }
  const env = { ...sandboxEnvironment(root, definitions), BOXSMITH_PACKER: STANDIN_PACKER };
  const build = (version: string, extraEnv: Record<string, string> = {}) =>
    boxsmith(['build', 'standin', '--version', version, '--no-apt-cache', '--no-test'], { ...env, ...extraEnv });
  const boxDir = (name: string, version: string) => path.join(root, 'boxes', 'phusion', `${name}-amd64`, version);
  return { root, env, isoSha256, build, boxDir };
}
