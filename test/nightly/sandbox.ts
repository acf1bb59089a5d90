// A nightly as a CI job runs it, with the stand-in packer (test/fixtures/build/packer; a real build
// needs a VM and minutes): a copy of boxsmith's own tree (src, templates, scripts, keys,
// definitions), so a test can change a guest script as a commit would and run the copy's CLI;
// stand-in installer boxes whose ISO is a small local file and whose package archive is a local
// HTTP server (test/fixtures/nightly/archive-server.mjs) serving InRelease files a test can
// change; every folder a run writes in a temporary folder.
import { spawn, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { STANDIN_PACKER } from '../build-sandbox.ts';
import { REPO_ROOT, run } from '../helpers.ts';

/** A local package archive: dists/<suite>/InRelease for trusty and its -updates and -security. */
export async function startArchive(root: string): Promise<{ host: string; touch: (suite: string) => void; stop: () => void }> {
  const dir = path.join(root, 'archive');
  const touch = (suite: string) => {
    mkdirSync(path.join(dir, 'ubuntu', 'dists', suite), { recursive: true });
    writeFileSync(path.join(dir, 'ubuntu', 'dists', suite, 'InRelease'), `Origin: Ubuntu\nSuite: ${suite}\nDate: ${new Date().toUTCString()}\nNonce: ${Math.random()}\n`);
  };
  for (const suite of ['trusty', 'trusty-updates', 'trusty-security']) touch(suite);
  const server = spawn(process.execPath, [path.join(REPO_ROOT, 'test/fixtures/nightly/archive-server.mjs'), dir], { stdio: ['ignore', 'pipe', 'ignore'] });
  const port = await new Promise<string>((resolve, reject) => {
    let said = '';
    server.stdout.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      const match = /^port (\d+)$/m.exec(said);
      if (match) resolve(match[1]!);
    });
    server.once('exit', (code) => reject(new Error(`the archive server exited (${code}): ${said}`)));
  });
  return { host: `127.0.0.1:${port}`, touch, stop: () => server.kill() };
}

/** The folders one "runner" writes: its own boxes, work, logs, cache and reports. */
export type RunnerFolders = {
  BOXSMITH_BOXES: string;
  BOXSMITH_WORK: string;
  BOXSMITH_LOGS: string;
  BOXSMITH_CACHE: string;
  BOXSMITH_REPORTS: string;
};

export interface NightlySandbox {
  root: string;
  /** The copy of boxsmith whose CLI the runs use. */
  tree: string;
  env: RunnerFolders & Record<string, string>;
  /** Runs the copy's CLI with the sandbox's folders (and `extra` environment). */
  boxsmith: (args: string[], extra?: Partial<RunnerFolders> & Record<string, string>) => SpawnSyncReturns<string>;
  /** The folders of another "runner" (its own boxes, work, logs, cache, reports). */
  runner: (name: string) => RunnerFolders;
  archive: { host: string; touch: (suite: string) => void };
  /** Stops the archive server and removes the folder (call from the suite's `after`). */
  dispose: () => void;
}

/** `boxes`: stand-in box names with their providers. */
export async function nightlySandbox(boxes: Record<string, string[]>): Promise<NightlySandbox> {
  const root = mkdtempSync(path.join(tmpdir(), 'boxsmith-nightly-'));
  const tree = path.join(root, 'boxsmith');
  for (const part of ['src', 'templates', 'scripts', 'keys', 'definitions', 'package.json', 'tsconfig.json']) cpSync(path.join(REPO_ROOT, part), path.join(tree, part), { recursive: true });
  symlinkSync(realpathSync(path.join(REPO_ROOT, 'node_modules')), path.join(tree, 'node_modules'));
  const archive = await startArchive(root);
  const iso = path.join(root, 'standin.iso');
  writeFileSync(iso, 'not really an installer\n');
  const isoSha256 = createHash('sha256').update(readFileSync(iso)).digest('hex');
  for (const [name, providers] of Object.entries(boxes)) {
    writeFileSync(
      path.join(tree, 'definitions', `${name}.yaml`),
      [
        'extends: ubuntu-14.04',
        `box_name: ${name}-amd64`,
        `providers: [${providers.join(', ')}]`,
        'base:',
        '  iso:',
        '    file: standin.iso',
        `    urls: ["file://${iso}"]`,
        `    checksum: sha256:${isoSha256}`,
        '  installer:',
        '    preseed:',
        `      mirror_host: "${archive.host}"`,
        '',
      ].join('\n'),
    );
  }
  const runner = (name: string): RunnerFolders => ({
    BOXSMITH_BOXES: path.join(root, name, 'boxes'),
    BOXSMITH_WORK: path.join(root, name, 'work'),
    BOXSMITH_LOGS: path.join(root, name, 'logs'),
    BOXSMITH_CACHE: path.join(root, name, 'cache'),
    BOXSMITH_REPORTS: path.join(root, name, 'reports'),
  });
  const env = { BOXSMITH_PACKER: STANDIN_PACKER, BOXSMITH_ACCEL: 'tcg', CI: 'true', ...runner('host') };
  // The copy's own definitions/ (with the stand-in boxes), whatever the test's environment says.
  const { BOXSMITH_DEFINITIONS: _outer, ...outer } = process.env;
  const boxsmith = (args: string[], extra: Partial<RunnerFolders> & Record<string, string> = {}) =>
    run(process.execPath, ['--import', 'tsx', path.join(tree, 'src/cli.ts'), ...args], { cwd: tree, env: { ...outer, ...env, ...extra } });
  const dispose = () => {
    archive.stop();
    rmSync(root, { recursive: true, force: true });
  };
  return { root, tree, env, boxsmith, runner, archive, dispose };
}

/** reports/<version>/report.json of a run's report folder. */
export function readReport(reportsDir: string, version: string) {
  return JSON.parse(readFileSync(path.join(reportsDir, version, 'report.json'), 'utf8'));
}
