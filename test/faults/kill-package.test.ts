// boxsmith SIGKILLed during the package step (the box read, hashed and staged beside its final
// folder), with the stand-in packer (test/fixtures/build/packer; a real build needs a VM and
// minutes, and the real chain's faults are in test/e2e/chain.test.ts): the watchdog removes the
// staging folder and the work folder, nothing of the run is left within 10 s, the last good box
// is byte for byte as it was, and the next run succeeds with no clean-up by hand.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WATCHDOG_LOG_NAME } from '../../src/exec/watchdog.ts';
import { FOLDER_MARKER } from '../../src/files/owned-folder.ts';
import { isStagingName } from '../../src/store/staging.ts';
import { CLI, REPO_ROOT } from '../helpers.ts';
import { buildSandbox } from '../build-sandbox.ts';
import { runIdsIn, snapshotFolder, snapshotHost, waitUntilClean } from './leftovers.ts';

/** The work folder's entries but its ownership marker. */
const workFolders = (dir: string) => readdirSync(dir).filter((name) => name !== FOLDER_MARKER);

/** Every file and folder below `dir` whose name says it is staging or scratch of a build. */
function partials(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).filter((name) => name.split('/').some(isStagingName) || /\.partial$|\.tmp-/.test(name));
}

describe('boxsmith SIGKILLed during package (stand-in packer)', () => {
  it('stand-in packer: the staging and work folders are removed by the watchdog, the last good box is unchanged, the next run succeeds', async () => {
    const { root, env, build } = buildSandbox('boxsmith-fault-package-');
    const scope = { folders: [root], libvirt: false };
    const good = build('1.0.0');
    assert.equal(good.status, 0, good.stdout + good.stderr);
    const boxes = env.BOXSMITH_BOXES;
    const lastGood = snapshotFolder(boxes);
    const host = snapshotHost(scope);

    // A box big enough that reading and hashing it takes a while.
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'build', 'standin', '--version', '2.0.0', '--no-apt-cache', '--no-test'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, STANDIN_BOX_MB: '200' },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const staging = path.join(boxes, 'phusion', 'standin-amd64', '2.0.0');
    const deadline = Date.now() + 120_000;
    let packaging = false;
    while (!packaging && Date.now() < deadline) {
      packaging = existsSync(staging) && readdirSync(staging).some(isStagingName);
      if (!packaging) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(packaging, 'the build reached the package step');
    child.kill('SIGKILL');
    await exited;

    assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(env.BOXSMITH_LOGS) }), []);
    // The watchdog removes scratch only after the run's processes are gone: give it the same 10 s.
    const cleanBy = Date.now() + 10_000;
    while ((partials(boxes).length > 0 || workFolders(env.BOXSMITH_WORK).length > 0) && Date.now() < cleanBy) await new Promise((resolve) => setTimeout(resolve, 200));
    // A failure shows what the watchdog did (it runs beside the test, its log is the only witness).
    const watchdogLogs = () =>
      runIdsIn(env.BOXSMITH_LOGS)
        .map((id) => path.join(env.BOXSMITH_LOGS, id, WATCHDOG_LOG_NAME))
        .filter((file) => existsSync(file))
        .map((file) => `${file}:\n${readFileSync(file, 'utf8')}`)
        .join('\n');
    assert.deepEqual(partials(boxes), [], `no staging folder left in boxes/; the watchdog's log:\n${watchdogLogs()}`);
    assert.deepEqual(workFolders(env.BOXSMITH_WORK), [], `no work folder left; the watchdog's log:\n${watchdogLogs()}`);
    assert.equal(existsSync(path.join(staging, 'libvirt.box')), false, 'nothing was put in place');
    const lastGoodNow = snapshotFolder(boxes);
    for (const [name, entry] of Object.entries(lastGood)) assert.equal(lastGoodNow[name], entry, `${name} unchanged`);

    const next = build('2.0.0');
    assert.equal(next.status, 0, next.stdout + next.stderr);
    assert.ok(existsSync(path.join(staging, 'libvirt.box')));
  });
});
