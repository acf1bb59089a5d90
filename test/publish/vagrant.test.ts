// The real vagrant client (Debian's) against published catalog trees served on 127.0.0.1: adding a
// box by catalog URL and by name, the checksum check refusing a tampered box, `vagrant init` and
// `vagrant box outdated` resolving the name, which entry Vagrant 2.3 takes of a provider listed for
// two architectures, the serve command, and the top-level Vagrantfile.
// Every vagrant runs with a throw-away VAGRANT_HOME; the boxes are small real .box files.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { formatCatalog, mergeIntoCatalog, parseCatalog, type CatalogProvider } from '../../src/publish/catalog.ts';
import { publishBox } from '../../src/publish/publish.ts';
import { startCatalogServer, type CatalogServer } from '../../src/publish/server.ts';
import { CLI, REPO_ROOT } from '../helpers.ts';
import { BOX, BOX_NAME, NAME, ORG, writeBuild } from './helpers.ts';
import { assertAdded, runAsync, VAGRANT, vagrant } from './vagrant-client.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function temporary(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Boxes built for `versions`, published to a tree that a catalog server serves. */
async function servedTree(versions: string[]): Promise<{ server: CatalogServer; root: string; boxesDir: string; requests: string[]; publish: (version: string) => Promise<void> }> {
  const boxesDir = temporary('boxsmith-vagrant-boxes-');
  const root = temporary('boxsmith-vagrant-tree-');
  const requests: string[] = [];
  const server = await startCatalogServer({ root, port: 0, onRequest: (line) => requests.push(line) });
  cleanups.push(() => server.close());
  const publish = async (version: string) => {
    writeBuild(boxesDir, version);
    const report = await publishBox({ box: BOX, version, target: { kind: 'static', root, baseUrl: server.url }, boxesDir, env: {}, log: () => {} });
    assert.ok(report.ok);
  };
  for (const version of versions) await publish(version);
  return { server, root, boxesDir, requests, publish };
}

describe('the vagrant client against a published tree', { skip: VAGRANT ? false : 'vagrant is not installed (setup/install.sh installs it)' }, () => {
  it('adds the box by catalog URL and by name through VAGRANT_SERVER_URL; box list shows version and provider', async () => {
    const { server, requests } = await servedTree(['1.0.0']);

    const byUrl = temporary('boxsmith-vagrant-home-');
    assertAdded(await vagrant(['box', 'add', `${server.url}/${NAME}.json`], { home: byUrl }), '1.0.0');
    assert.match((await vagrant(['box', 'list'], { home: byUrl })).output, /^phusion\/ubuntu-14\.04-amd64 \(libvirt, 1\.0\.0\)$/m);

    const byName = temporary('boxsmith-vagrant-home-');
    requests.length = 0;
    assertAdded(await vagrant(['box', 'add', NAME], { home: byName, serverUrl: server.url }), '1.0.0');
    // What vagrant asks for by name: HEAD, then GET, of /<org>/<box>; then the box file.
    const seen = requests.map((line) => line.split(' ').slice(0, 3).join(' '));
    assert.equal(seen[0], `HEAD /${NAME} 200`);
    const catalogGet = seen.indexOf(`GET /${NAME} 200`);
    const boxGet = seen.indexOf(`GET /${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.box 200`);
    assert.ok(catalogGet > 0 && boxGet > catalogGet, seen.join('\n'));
    assert.match((await vagrant(['box', 'list'], { home: byName })).output, /^phusion\/ubuntu-14\.04-amd64 \(libvirt, 1\.0\.0\)$/m);
  });

  it('takes the newest of two published versions, or the one asked for', async () => {
    const { server } = await servedTree(['1.0.0', '1.1.0']);
    const home = temporary('boxsmith-vagrant-home-');
    assertAdded(await vagrant(['box', 'add', NAME], { home, serverUrl: server.url }), '1.1.0');
    assertAdded(await vagrant(['box', 'add', NAME, '--box-version', '1.0.0'], { home, serverUrl: server.url }), '1.0.0');
    const list = (await vagrant(['box', 'list'], { home })).output;
    assert.match(list, /\(libvirt, 1\.0\.0\)/);
    assert.match(list, /\(libvirt, 1\.1\.0\)/);
  });

  it('Vagrant 2.3 takes the default architecture when a provider is listed for two (it keeps the last entry of a name)', async () => {
    const { server, root } = await servedTree(['1.0.0']);
    // An arm64 entry of the same provider, published after the amd64 one, pointing at a file that
    // is not there: the add succeeds only if vagrant takes the amd64 entry, the default.
    const catalogFile = path.join(root, ORG, BOX_NAME);
    const arm64: CatalogProvider = { name: 'libvirt', url: `${server.url}/${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/arm64.box`, checksum_type: 'sha256', checksum: '0'.repeat(64), architecture: 'arm64' };
    const catalog = mergeIntoCatalog(parseCatalog(readFileSync(catalogFile, 'utf8'), catalogFile), { name: NAME, description: '', version: '1.0.0', providers: [arm64] });
    assert.deepEqual(catalog.versions[0]!.providers.map((p) => `${p.architecture} ${p.default_architecture}`), ['arm64 false', 'amd64 true']);
    for (const file of [catalogFile, `${catalogFile}.json`]) writeFileSync(file, formatCatalog(catalog));
    const home = temporary('boxsmith-vagrant-home-');
    assertAdded(await vagrant(['box', 'add', NAME], { home, serverUrl: server.url }), '1.0.0');
  });

  it('the lines `boxsmith publish` prints work: VAGRANT_SERVER_URL and the name, or box_url in a Vagrantfile', async () => {
    const boxesDir = temporary('boxsmith-vagrant-boxes-');
    const root = temporary('boxsmith-vagrant-tree-');
    const server = await startCatalogServer({ root, port: 0 });
    cleanups.push(() => server.close());
    writeBuild(boxesDir, '1.0.0');
    const published = await runAsync(process.execPath, ['--import', 'tsx', CLI, 'publish', BOX, '--to', `static:${root},base-url=${server.url}`], {
      cwd: REPO_ROOT,
      env: { ...process.env, BOXSMITH_BOXES: boxesDir },
    });
    assert.equal(published.code, 0, published.output);
    const serverUrl = /^\s+export VAGRANT_SERVER_URL=(\S+)$/m.exec(published.output)?.[1];
    const init = /^\s+vagrant init (\S+)$/m.exec(published.output)?.[1];
    const vagrantfileLines = [...published.output.matchAll(/^\s+(config\.vm\.box(?:_url)? = "[^"]+")$/gm)].map((match) => match[1]!);
    assert.equal(serverUrl, server.url, published.output);
    assert.equal(init, NAME);
    assert.deepEqual(vagrantfileLines, [`config.vm.box = "${NAME}"`, `config.vm.box_url = "${server.url}/${NAME}.json"`]);

    assertAdded(await vagrant(['box', 'add', init!], { home: temporary('boxsmith-vagrant-home-'), serverUrl }), '1.0.0');
    const boxUrl = /box_url = "([^"]+)"/.exec(vagrantfileLines[1]!)![1]!;
    assertAdded(await vagrant(['box', 'add', boxUrl], { home: temporary('boxsmith-vagrant-home-') }), '1.0.0');
    const project = temporary('boxsmith-vagrant-project-');
    writeFileSync(path.join(project, 'Vagrantfile'), `Vagrant.configure("2") do |config|\n  ${vagrantfileLines.join('\n  ')}\nend\n`);
    const validate = await vagrant(['validate'], { home: temporary('boxsmith-vagrant-home-'), cwd: project });
    assert.equal(validate.code, 0, validate.output);
  });

  it("refuses a tampered box file: vagrant's checksum check", async () => {
    const { server, root } = await servedTree(['1.0.0']);
    const served = path.join(root, ORG, 'boxes', BOX_NAME, 'versions', '1.0.0', 'providers', 'libvirt', 'amd64.box');
    const bytes = readFileSync(served);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    writeFileSync(served, bytes);
    const home = temporary('boxsmith-vagrant-home-');
    const run = await vagrant(['box', 'add', NAME], { home, serverUrl: server.url });
    assert.notEqual(run.code, 0);
    assert.match(run.output, /The checksum of the downloaded box did not match the expected\s+value/);
    assert.doesNotMatch((await vagrant(['box', 'list'], { home })).output, /phusion\/ubuntu-14\.04-amd64/);
  });

  it('vagrant init phusion/ubuntu-14.04-amd64, then box add and box outdated resolve the name against the served tree', async () => {
    const { server, publish } = await servedTree(['1.0.0']);
    const home = temporary('boxsmith-vagrant-home-');
    const project = temporary('boxsmith-vagrant-project-');
    const init = await vagrant(['init', NAME], { home, cwd: project });
    assert.equal(init.code, 0, init.output);
    const box = /^\s*config\.vm\.box = "([^"]+)"/m.exec(readFileSync(path.join(project, 'Vagrantfile'), 'utf8'))?.[1];
    assert.equal(box, NAME);
    assertAdded(await vagrant(['box', 'add', box!], { home, cwd: project, serverUrl: server.url }), '1.0.0');
    const upToDate = await vagrant(['box', 'outdated', '--force'], { home, cwd: project, serverUrl: server.url });
    assert.equal(upToDate.code, 0, upToDate.output);
    assert.match(upToDate.output, /Checking if box 'phusion\/ubuntu-14\.04-amd64' version '1\.0\.0' is up to date/);
    assert.doesNotMatch(upToDate.output, /newer version/);
    await publish('1.1.0');
    const outdated = await vagrant(['box', 'outdated', '--force'], { home, cwd: project, serverUrl: server.url });
    assert.match(outdated.output, /A newer version of the box 'phusion\/ubuntu-14\.04-amd64' for provider 'libvirt' is\s+available!.*The latest is version\s+'1\.1\.0'/s);
  });

  it('the serve command serves a tree published without base-url (file:// boxes) and stops cleanly on SIGTERM', async () => {
    const boxesDir = temporary('boxsmith-vagrant-boxes-');
    const root = temporary('boxsmith-vagrant-tree-');
    writeBuild(boxesDir, '1.0.0');
    assert.ok((await publishBox({ box: BOX, target: { kind: 'static', root }, boxesDir, env: {}, log: () => {} })).ok);

      const serve = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', root, '--port', '0'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => serve.once('close', resolve));
    cleanups.push(async () => {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
      await exited;
    });
    let output = '';
    serve.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      serve.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        // The line after "serving DIR at URL": the server is listening and has listed the catalogs.
        const match = /^\s+VAGRANT_SERVER_URL=(http:\/\/127\.0\.0\.1:\d+) /m.exec(output);
        if (match) resolve(match[1]!);
      });
      serve.once('close', () => reject(new Error(`serve exited: ${output}`)));
    });
    assert.match(output, new RegExp(`serving ${root} at ${url}`));
    assert.match(output, new RegExp(`VAGRANT_SERVER_URL=${url} vagrant box add ${NAME}`));
    const home = temporary('boxsmith-vagrant-home-');
    assertAdded(await vagrant(['box', 'add', NAME], { home, serverUrl: url }), '1.0.0');
    serve.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    assert.match(output, /stopped \(SIGTERM\)/);
  });

  it('the top-level Vagrantfile passes vagrant validate', async () => {
    const project = temporary('boxsmith-vagrantfile-');
    copyFileSync(path.join(REPO_ROOT, 'Vagrantfile'), path.join(project, 'Vagrantfile'));
    const run = await vagrant(['validate'], { home: temporary('boxsmith-vagrant-home-'), cwd: project });
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /Vagrantfile validated successfully/);
    // The way to a box after HCP Vagrant by catalog URL (BOX_URL), for another box too.
    const byUrl = await vagrant(['validate'], {
      home: temporary('boxsmith-vagrant-home-'),
      cwd: project,
      env: { BOX: 'phusion/debian-12-amd64', BOX_URL: 'https://boxes.example.org/phusion/debian-12-amd64.json' },
    });
    assert.equal(byUrl.code, 0, byUrl.output);
    assert.match(byUrl.output, /Vagrantfile validated successfully/);
  });
});
