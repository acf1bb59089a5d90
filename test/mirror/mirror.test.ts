// `boxsmith mirror` (the real CLI) against catalogs served on 127.0.0.1 by a node http server
// (./source-server.ts): a two-version box in the Vagrant Cloud API's shape found by name through
// VAGRANT_SERVER_URL, mirrored into a new static tree, then added from the mirror by Debian's
// vagrant; Vagrant's box metadata shape at a URL; a corrupted source box refused; a mirror
// SIGKILLed mid-download resumed with a Range request; a mirror into an rclone (SFTP) target. The
// boxes are small real .box files (../publish/helpers.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { startCatalogServer } from '../../src/publish/server.ts';
import { boxsmithAsync, CLI, REPO_ROOT, tempDir } from '../helpers.ts';
import { BOX_NAME, makeBoxFile, NAME, ORG } from '../publish/helpers.ts';
import { sftpSkipReason, startSftpServer } from '../publish/sftp-server.ts';
import { assertAdded, VAGRANT, vagrant } from '../publish/vagrant-client.ts';
import { SourceServer } from './source-server.ts';

interface SourceBox {
  version: string;
  body: Buffer;
  sha256: string;
  path: string;
}

function box(dir: string, version: string, imageBytes = 64 * 1024): SourceBox {
  const file = path.join(dir, `${version}.box`);
  makeBoxFile(file, 'libvirt', imageBytes);
  const body = readFileSync(file);
  return { version, body, sha256: createHash('sha256').update(body).digest('hex'), path: `/files/${version}/libvirt-amd64.box` };
}

/** The Vagrant Cloud API's box JSON (GET /api/v2/box/:org/:name), with an unreleased version too. */
function apiBoxJson(boxes: SourceBox[], origin: string): string {
  return JSON.stringify({
    tag: NAME,
    name: BOX_NAME,
    username: ORG,
    description_short: 'Ubuntu 14.04, Docker-ready',
    versions: [
      ...boxes.map((b) => ({
        version: b.version,
        status: 'active',
        providers: [{ name: 'libvirt', architecture: 'amd64', default_architecture: true, checksum_type: 'SHA256', checksum: b.sha256, download_url: `${origin}${b.path}` }],
      })),
      { version: '9.9.9', status: 'unreleased', providers: [] },
    ],
  });
}

/** Vagrant's box metadata, as a static catalog has it. */
function metadataJson(boxes: SourceBox[], origin: string): string {
  return JSON.stringify({
    name: NAME,
    description: 'Ubuntu 14.04',
    versions: boxes.map((b) => ({ version: b.version, providers: [{ name: 'libvirt', url: `${origin}${b.path}`, checksum_type: 'sha256', checksum: b.sha256 }] })),
  });
}

async function sourceServer(): Promise<SourceServer> {
  const server = await SourceServer.start();
  after(() => server.close());
  return server;
}

function env(root: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { BOXSMITH_CACHE: path.join(root, 'cache'), BOXSMITH_LOGS: path.join(root, 'logs'), VAGRANT_SERVER_URL: '', ...extra };
}

const boxFileIn = (tree: string, version: string, architecture = 'amd64') =>
  path.join(tree, ORG, 'boxes', BOX_NAME, 'versions', version, 'providers', 'libvirt', `${architecture}.box`);

describe('boxsmith mirror', () => {
  it('mirrors a two-version box found by name through VAGRANT_SERVER_URL (API shape) into a new static tree; vagrant adds it from the mirror', async () => {
    const root = tempDir('boxsmith-mirror-');
    const source = await sourceServer();
    const boxes = [box(root, '1.0.0'), box(root, '1.1.0')];
    for (const b of boxes) source.serve(b.path, b.body);
    source.serve(`/api/${NAME}`, apiBoxJson(boxes, source.url), 'application/json');
    // An empty folder boxsmith claims as its catalog tree, served at its root as a catalog host serves it.
    const tree = path.join(root, 'tree');
    mkdirSync(tree);
    const mirrorServer = await startCatalogServer({ root: tree, port: 0 });
    after(() => mirrorServer.close());
    const baseUrl = mirrorServer.url;

    const started = performance.now();
    const run = await boxsmithAsync(['mirror', NAME, '--to', `static:${tree},base-url=${baseUrl}`], env(root, { VAGRANT_SERVER_URL: `${source.url}/api` }));
    console.log(`# mirror of two small versions: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /mirrored phusion\/ubuntu-14\.04-amd64 from http:\/\/127\.0\.0\.1:\d+\/api\/phusion\/ubuntu-14\.04-amd64 to static:/);
    assert.match(run.stdout, /boxes copied: 2, already there: 0/);
    assert.match(run.stdout, /not mirrored: 9\.9\.9 \(unreleased\)/);
    for (const b of boxes) assert.deepEqual(readFileSync(boxFileIn(tree, b.version)), b.body);
    const catalog = JSON.parse(readFileSync(path.join(tree, ORG, `${BOX_NAME}.json`), 'utf8')) as { name: string; description: string; versions: Array<{ version: string; providers: Array<Record<string, unknown>> }> };
    assert.equal(catalog.name, NAME);
    assert.equal(catalog.description, 'Ubuntu 14.04, Docker-ready');
    assert.deepEqual(catalog.versions.map((v) => v.version), ['1.1.0', '1.0.0']);
    assert.deepEqual(catalog.versions[0]!.providers[0], {
      name: 'libvirt',
      url: `${baseUrl}/${ORG}/boxes/${BOX_NAME}/versions/1.1.0/providers/libvirt/amd64.box`,
      checksum_type: 'sha256',
      checksum: boxes[1]!.sha256,
      architecture: 'amd64',
      default_architecture: true,
    });
    assert.deepEqual(readdirSync(path.join(root, 'cache', 'mirror')).flatMap((dir) => readdirSync(path.join(root, 'cache', 'mirror', dir))), [], 'no download is left in the cache');

    // Run again: nothing is downloaded.
    const seen = source.seen.length;
    const again = await boxsmithAsync(['mirror', NAME, '--to', `static:${tree},base-url=${baseUrl}`], env(root, { VAGRANT_SERVER_URL: `${source.url}/api` }));
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /boxes copied: 0, already there: 2/);
    assert.deepEqual(source.seen.slice(seen).map((r) => r.path), [`/api/${NAME}`]);

    if (!VAGRANT) return;
    const home = tempDir('boxsmith-mirror-vagrant-home-');
    assertAdded(await vagrant(['box', 'add', NAME], { home, serverUrl: baseUrl }), '1.1.0');
    assertAdded(await vagrant(['box', 'add', NAME, '--box-version', '1.0.0'], { home, serverUrl: baseUrl }), '1.0.0');
  });

  it('refuses a corrupted source box in one line naming its URL, and writes no catalog', async () => {
    const root = tempDir('boxsmith-mirror-');
    const source = await sourceServer();
    const boxes = [box(root, '1.0.0'), box(root, '1.1.0')];
    source.serve(boxes[0]!.path, boxes[0]!.body);
    const damaged = Buffer.from(boxes[1]!.body);
    damaged[damaged.length - 7] = damaged[damaged.length - 7]! ^ 0xff;
    source.serve(boxes[1]!.path, damaged);
    const catalogUrl = source.serve(`/catalogs/${NAME}.json`, metadataJson(boxes, source.url), 'application/json');
    const tree = path.join(root, 'tree');
    const run = await boxsmithAsync(['mirror', catalogUrl, '--to', `static:${tree}`], env(root));
    assert.equal(run.status, 1, run.stdout + run.stderr);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, new RegExp(`^boxsmith: mirror: ${source.url.replace(/[.]/g, '\\.')}${boxes[1]!.path.replace(/[.]/g, '\\.')} has sha256:[0-9a-f]{64}, but its catalog says sha256:${boxes[1]!.sha256}: the box there is damaged`));
    assert.doesNotMatch(run.stderr, /\n\s+at /);
    assert.ok(!existsSync(path.join(tree, ORG, BOX_NAME)) && !existsSync(path.join(tree, ORG, `${BOX_NAME}.json`)), 'no catalog was written');
  });

  it('refuses what is not a catalog, and a source it cannot reach, in one line each', async () => {
    const root = tempDir('boxsmith-mirror-');
    const source = await sourceServer();
    const notCatalog = source.serve('/page.json', '<html>hello</html>', 'text/html');
    for (const [from, message] of [
      [notCatalog, /^boxsmith: mirror: http:\/\/127\.0\.0\.1:\d+\/page\.json is not a box catalog \(not JSON\)$/],
      [`${source.url}/missing.json`, /^boxsmith: mirror: could not read the catalog http:\/\/127\.0\.0\.1:\d+\/missing\.json: HTTP 404 Not Found$/],
      ['not a name', /^boxsmith: mirror: "not a name" is neither a box name \(org\/name\) nor a catalog URL$/],
    ] as const) {
      const run = await boxsmithAsync(['mirror', from, '--to', `static:${path.join(root, 'tree')}`], env(root));
      assert.equal(run.status, 1, run.stdout + run.stderr);
      assert.match(run.stderr.trim(), message);
    }
    const noTarget = await boxsmithAsync(['mirror', NAME, '--to', 'vagrant-cloud'], env(root));
    assert.equal(noTarget.status, 2);
    assert.match(noTarget.stderr, /^boxsmith: mirror --to takes a catalog tree: static:DIR\[,base-url=URL\] or rclone:REMOTE:PATH,base-url=URL$/m);
  });

  it('a mirror SIGKILLed mid-download resumes where it stopped (a Range request) when run again', async () => {
    const root = tempDir('boxsmith-mirror-');
    const source = await sourceServer();
    const boxes = [box(root, '1.0.0'), box(root, '1.1.0', 8 * 1024 * 1024)];
    for (const b of boxes) source.serve(b.path, b.body);
    const catalogUrl = source.serve(`/catalogs/${NAME}.json`, metadataJson(boxes, source.url), 'application/json');
    const tree = path.join(root, 'tree');
    // About 3 MiB/s: the 8 MiB box takes a few seconds, long enough to be caught mid-way.
    source.pace = 64 * 1024;
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'mirror', catalogUrl, '--to', `static:${tree}`], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env(root) },
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const part = path.join(root, 'cache', 'mirror', `sha256-${boxes[1]!.sha256}`, 'box.part');
    try {
      const deadline = Date.now() + 60_000;
      while (!(existsSync(part) && statSync(part).size > 1024 * 1024) && Date.now() < deadline && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(existsSync(part), 'the download of the second box began');
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
    } finally {
      child.kill('SIGKILL');
    }
    const kept = statSync(part).size;
    assert.ok(kept > 0 && kept < boxes[1]!.body.length, `killed mid-download (${kept} bytes kept)`);
    assert.ok(!existsSync(path.join(tree, ORG, BOX_NAME)), 'no catalog yet');

    source.pace = 0;
    const resumed = await boxsmithAsync(['mirror', catalogUrl, '--to', `static:${tree}`], env(root));
    assert.equal(resumed.status, 0, resumed.stdout + resumed.stderr);
    assert.match(resumed.stdout, /already in the tree with its sha256/, 'the first box, placed before the kill, is not fetched again');
    assert.match(resumed.stdout, /resumed at byte \d+/);
    const ranges = source.rangesOf(boxes[1]!.path);
    assert.equal(ranges[0], undefined);
    assert.match(ranges.at(-1) ?? '', /^bytes=[1-9]\d*-$/, 'the second run asked for the bytes it lacked');
    assert.equal(source.rangesOf(boxes[0]!.path).length, 1);
    assert.deepEqual(readFileSync(boxFileIn(tree, '1.1.0', 'unknown')), boxes[1]!.body);
    const catalog = JSON.parse(readFileSync(path.join(tree, ORG, BOX_NAME), 'utf8')) as { versions: Array<{ version: string }> };
    assert.deepEqual(catalog.versions.map((v) => v.version), ['1.1.0', '1.0.0']);
  });

  it('mirrors into an rclone target on an SFTP server on 127.0.0.1', { skip: sftpSkipReason() }, async () => {
    const root = tempDir('boxsmith-mirror-');
    const sftp = await startSftpServer(path.join(root));
    after(() => sftp.stop());
    const source = await sourceServer();
    const boxes = [box(root, '1.0.0'), box(root, '1.1.0')];
    for (const b of boxes) source.serve(b.path, b.body);
    const catalogUrl = source.serve(`/catalogs/${NAME}.json`, metadataJson(boxes, source.url), 'application/json');
    const started = performance.now();
    const run = await boxsmithAsync(['mirror', catalogUrl, '--to', `rclone:${sftp.connection},base-url=http://127.0.0.1:1/boxes`], env(root));
    console.log(`# mirror of two small versions into rclone/SFTP: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    // Without an architecture in the source catalog, the boxes go under unknown.box and the entries have none.
    for (const b of boxes) assert.deepEqual(readFileSync(boxFileIn(sftp.remoteDir, b.version, 'unknown')), b.body);
    const catalog = JSON.parse(readFileSync(path.join(sftp.remoteDir, ORG, BOX_NAME), 'utf8')) as { versions: Array<{ version: string; providers: Array<Record<string, unknown>> }> };
    assert.deepEqual(catalog.versions.map((v) => v.version), ['1.1.0', '1.0.0']);
    assert.equal(catalog.versions[1]!.providers[0]!.url, `http://127.0.0.1:1/boxes/${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/unknown.box`);
    assert.ok(!('architecture' in catalog.versions[1]!.providers[0]!));
  });
});
