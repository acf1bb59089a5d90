// boxsmith killed with SIGKILL while it publishes through rclone to an SFTP remote (Debian's sshd
// on 127.0.0.1, ../publish/sftp-server.ts) that already serves a previous version: the real CLI,
// killed (1) mid-upload, as soon as its temporary upload appears on the remote, and (2) after the
// box reached its final name but before the catalog was written. Either way the catalog and the
// previous version stay byte for byte, nothing of the run is left running (the watchdog ends
// rclone), and the next publish releases the new version: uploading again after (1), skipping
// the box already in place after (2).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { startCatalogServer } from '../../src/publish/server.ts';
import { boxsmith, CLI, REPO_ROOT, tempDir } from '../helpers.ts';
import { BIG_BOX_BYTES, BOX, BOX_NAME, ORG, writeBigBuild, writeBuild } from '../publish/helpers.ts';
import { sftpSkipReason, startSftpServer } from '../publish/sftp-server.ts';
import { runIdsIn, snapshotFolder, snapshotHost, waitUntilClean, type LeftoverScope } from './leftovers.ts';

const providerDir = (tree: string, version: string) => path.join(tree, ORG, 'boxes', BOX_NAME, 'versions', version, 'providers', 'libvirt');

async function killedPublish(moment: 'mid-upload' | 'before-catalog') {
  const root = tempDir('boxsmith-fault-rclone-');
  const server = await startSftpServer(root);
  after(() => server.stop());
  const boxesDir = path.join(root, 'boxes');
  const logs = path.join(root, 'logs');
  const env = { BOXSMITH_BOXES: boxesDir, BOXSMITH_LOGS: logs, BOXSMITH_CACHE: path.join(root, 'cache'), CI: 'true' };
  const to = `rclone:${server.connection},base-url=http://127.0.0.1:1`;
  const publish = (version: string) => boxsmith(['publish', BOX, '--to', to, '--version', version], env);

  writeBuild(boxesDir, '1.0.0');
  const first = publish('1.0.0');
  assert.equal(first.status, 0, first.stdout + first.stderr);
  const tree = server.remoteDir;
  const lastGood = snapshotFolder(tree);
  writeBigBuild(boxesDir, '2.0.0');

  // The folders of this test only: the sshd serving it runs on, by design.
  const scope: LeftoverScope = { folders: [boxesDir, logs], libvirt: false };
  const host = snapshotHost(scope);
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'publish', BOX, '--to', to, '--version', '2.0.0'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: 'ignore',
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  const dir = providerDir(tree, '2.0.0');
  const wanted = moment === 'mid-upload' ? (name: string) => name === '.amd64.box.boxsmith-upload' : (name: string) => name === 'amd64.box';
  let seen: string | undefined;
  try {
    const deadline = Date.now() + 90_000;
    while (!seen && Date.now() < deadline && child.exitCode === null) {
      seen = existsSync(dir) ? readdirSync(dir).find(wanted) : undefined;
      if (!seen) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(seen, `the publish reached the moment ${moment}`);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
  } finally {
    child.kill('SIGKILL');
  }
  const killedAfterS = (performance.now() - started) / 1000;
  if (moment === 'mid-upload') {
    const partial = path.join(dir, seen);
    assert.ok(!existsSync(partial) || statSync(partial).size < BIG_BOX_BYTES, 'killed mid-upload: the upload is incomplete');
    assert.ok(!existsSync(path.join(dir, 'amd64.box')), 'no box at its final name');
  }

  assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(logs) }), [], 'rclone was ended with boxsmith');
  const afterKill = snapshotFolder(tree);
  for (const [entry, state] of Object.entries(lastGood)) assert.equal(afterKill[entry], state, `${entry} unchanged`);
  const catalogServer = await startCatalogServer({ root: tree, port: 0 });
  try {
    const catalog = (await (await fetch(`${catalogServer.url}/${ORG}/${BOX_NAME}`)).json()) as { versions: { version: string }[] };
    assert.deepEqual(catalog.versions.map((v) => v.version), ['1.0.0'], 'the catalog served is the previous one');
    if (moment === 'mid-upload') assert.equal((await fetch(`${catalogServer.url}/${ORG}/boxes/${BOX_NAME}/versions/2.0.0/providers/libvirt/.amd64.box.boxsmith-upload`)).status, 404);
  } finally {
    await catalogServer.close();
  }

  const resumedAt = performance.now();
  const next = publish('2.0.0');
  const resumeS = (performance.now() - resumedAt) / 1000;
  assert.equal(next.status, 0, next.stdout + next.stderr);
  const released = JSON.parse(readFileSync(path.join(tree, ORG, BOX_NAME), 'utf8')) as { versions: { version: string }[] };
  assert.deepEqual(released.versions.map((v) => v.version), ['2.0.0', '1.0.0']);
  assert.deepEqual(readdirSync(dir).sort(), ['amd64.box', 'amd64.box.sha256', 'amd64.record.json'], 'no temporary upload is left');
  assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(logs) }), []);
  console.log(`# ${moment}: killed after ${killedAfterS.toFixed(1)} s; the next publish of the ${BIG_BOX_BYTES / 1048576} MiB box took ${resumeS.toFixed(1)} s`);
  return next.stdout + next.stderr;
}

describe('boxsmith killed with SIGKILL during a publish through rclone to SFTP', { skip: sftpSkipReason() }, () => {
  it('mid-upload: catalog and previous version unchanged, nothing left running, the next publish uploads again and releases', async () => {
    const output = await killedPublish('mid-upload');
    assert.match(output, /libvirt \(amd64\)\s+published/);
  });

  it('after the box was in place, before the catalog: catalog unchanged, the next publish skips the box (already there with its hash) and releases', async () => {
    const output = await killedPublish('before-catalog');
    assert.doesNotMatch(output, /uploading /);
    assert.match(output, /libvirt \(amd64\)\s+unchanged/);
  });
});
