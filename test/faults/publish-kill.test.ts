// boxsmith killed with SIGKILL while it copies a box into a static catalog tree that already
// serves a previous version: the real CLI (`boxsmith publish ... --to static:DIR`), killed as soon
// as its temporary copy appears. The catalog and the previous version stay byte for byte, the
// temporary copy is never served, nothing of the run is left running, and the next publish
// releases the new version with no clean-up by hand.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startCatalogServer } from '../../src/publish/server.ts';
import { boxsmith, CLI, REPO_ROOT, tempDir } from '../helpers.ts';
import { BIG_BOX_BYTES, BOX, BOX_NAME, ORG, writeBigBuild, writeBuild } from '../publish/helpers.ts';
import { runIdsIn, snapshotFolder, snapshotHost, waitUntilClean, type LeftoverScope } from './leftovers.ts';

const providerDir = (tree: string, version: string) => path.join(tree, ORG, 'boxes', BOX_NAME, 'versions', version, 'providers', 'libvirt');

describe('boxsmith killed with SIGKILL during a publish to a static tree', () => {
  it('mid-copy: catalog and previous version unchanged, the temporary copy not served, nothing left running, the next publish releases it', async () => {
    const root = tempDir('boxsmith-fault-publish-');
    const boxesDir = path.join(root, 'boxes');
    const tree = path.join(root, 'tree');
    const logs = path.join(root, 'logs');
    const env = { BOXSMITH_BOXES: boxesDir, BOXSMITH_LOGS: logs, BOXSMITH_CACHE: path.join(root, 'cache'), CI: 'true' };
    const publish = (version: string) => boxsmith(['publish', BOX, '--to', `static:${tree}`, '--version', version], env);

    writeBuild(boxesDir, '1.0.0');
    const first = publish('1.0.0');
    assert.equal(first.status, 0, first.stdout + first.stderr);
    const lastGood = snapshotFolder(tree);
    writeBigBuild(boxesDir, '2.0.0');

    const scope: LeftoverScope = { folders: [root], libvirt: false };
    const host = snapshotHost(scope);
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'publish', BOX, '--to', `static:${tree}`, '--version', '2.0.0'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    let temporary: string | undefined;
    try {
      const deadline = Date.now() + 60_000;
      while (!temporary && Date.now() < deadline) {
        const dir = providerDir(tree, '2.0.0');
        temporary = existsSync(dir) ? readdirSync(dir).find((name) => name.startsWith('.amd64.box.tmp-')) : undefined;
        if (!temporary) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.ok(temporary, 'the publish began copying the box');
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
    } finally {
      child.kill('SIGKILL');
    }
    const temporaryPath = path.join(providerDir(tree, '2.0.0'), temporary);
    assert.ok(existsSync(temporaryPath) && statSync(temporaryPath).size < BIG_BOX_BYTES, 'killed mid-copy: the copy is there, incomplete');

    assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(logs) }), []);
    const afterKill = snapshotFolder(tree);
    for (const [entry, state] of Object.entries(lastGood)) assert.equal(afterKill[entry], state, `${entry} unchanged`);
    const added = Object.keys(afterKill).filter((entry) => !(entry in lastGood));
    assert.ok(
      added.every((entry) => afterKill[entry]!.startsWith('dir ') || path.basename(entry).startsWith('.')),
      `only folders and hidden files were added: ${added.join(', ')}`,
    );
    const server = await startCatalogServer({ root: tree, port: 0 });
    try {
      const relative = path.relative(tree, temporaryPath).split(path.sep).join('/');
      assert.equal((await fetch(`${server.url}/${relative}`)).status, 404, 'the temporary copy is not served');
      const catalog = (await (await fetch(`${server.url}/${ORG}/${BOX_NAME}`)).json()) as { versions: { version: string }[] };
      assert.deepEqual(catalog.versions.map((v) => v.version), ['1.0.0'], 'the catalog served is the previous one');
    } finally {
      await server.close();
    }

    const next = publish('2.0.0');
    assert.equal(next.status, 0, next.stdout + next.stderr);
    assert.match(next.stdout + next.stderr, new RegExp(`took over the publish lock .*\\.${BOX_NAME.replace(/\./g, '\\.')}\\.lock of pid ${child.pid} on .*, which is gone`));
    assert.match(next.stdout + next.stderr, new RegExp(`removed ${temporaryPath.replace(/[.]/g, '\\.')}, left by a publish that did not finish`));
    const released = JSON.parse(readFileSync(path.join(tree, ORG, BOX_NAME), 'utf8')) as { versions: { version: string }[] };
    assert.deepEqual(released.versions.map((v) => v.version).sort(), ['1.0.0', '2.0.0']);
    const afterNext = snapshotFolder(tree);
    for (const [entry, state] of Object.entries(lastGood)) {
      if (!entry.startsWith(`${ORG}/${BOX_NAME}`)) assert.equal(afterNext[entry], state, `${entry} of the previous version unchanged`);
    }
    assert.deepEqual(readdirSync(providerDir(tree, '2.0.0')).sort(), ['amd64.box', 'amd64.box.sha256', 'amd64.record.json'], 'the killed run\'s temporary copy is gone');
    assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: runIdsIn(logs) }), []);
  });
});
