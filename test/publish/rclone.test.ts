// The rclone target against a real SFTP server on 127.0.0.1 (Debian's openssh-server, throw-away
// keys: ./sftp-server.ts) with Debian's rclone: the remote tree and catalog, the remote folder
// served by Debian's nginx (`nginx-conf`) and the box added by name with Debian's vagrant, a tampered
// box refused, --keep retention, a remote folder boxsmith did not write refused, and credentials
// of a connection string never shown. The boxes are small real .box files (./helpers.ts).
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { publishBox } from '../../src/publish/publish.ts';
import { startCatalogServer } from '../../src/publish/server.ts';
import { parseTarget, type PublishTarget } from '../../src/publish/target.ts';
import { boxsmith, tempDir } from '../helpers.ts';
import { BOX, BOX_NAME, NAME, ORG, sha256Of, writeBuild } from './helpers.ts';
import { sftpSkipReason, startSftpServer, type SftpServer } from './sftp-server.ts';
import { assertAdded, VAGRANT, vagrant } from './vagrant-client.ts';
import { NGINX, serveWithNginx } from './nginx-server.ts';

async function sftp(): Promise<SftpServer> {
  const server = await startSftpServer(tempDir('boxsmith-sftp-'));
  after(() => server.stop());
  return server;
}

const providerDir = (root: string, version: string) => path.join(root, ORG, 'boxes', BOX_NAME, 'versions', version, 'providers', 'libvirt');

describe('the rclone target', () => {
  it('parses rclone:REMOTE:PATH,base-url=URL for a named remote and a connection string, credentials blanked where shown', () => {
    const named = parseTarget('rclone:mybucket:boxes/public,base-url=https://boxes.example.org/public');
    assert.equal(named.kind, 'rclone');
    const { remote, baseUrl } = named as Extract<PublishTarget, { kind: 'rclone' }>;
    assert.deepEqual({ prefix: remote.prefix, path: remote.path, env: remote.env, baseUrl }, { prefix: 'mybucket:', path: 'boxes/public', env: {}, baseUrl: 'https://boxes.example.org/public' });

    const connection = parseTarget(
      `rclone::s3,provider=Minio,access_key_id=AKIAEXAMPLEID,secret_access_key="se,cret/value",endpoint='http://127.0.0.1:9000':bucket/boxes,base-url=http://127.0.0.1:9000/bucket/boxes`,
    );
    const target = connection as Extract<PublishTarget, { kind: 'rclone' }>;
    assert.equal(target.remote.prefix, 'boxsmithtarget:');
    assert.equal(target.remote.path, 'bucket/boxes');
    assert.equal(target.remote.env.RCLONE_CONFIG_BOXSMITHTARGET_TYPE, 's3');
    assert.equal(target.remote.env.RCLONE_CONFIG_BOXSMITHTARGET_SECRET_ACCESS_KEY, 'se,cret/value');
    assert.equal(target.remote.env.RCLONE_CONFIG_BOXSMITHTARGET_ENDPOINT, 'http://127.0.0.1:9000');
    assert.doesNotMatch(target.remote.shown, /se,cret|AKIAEXAMPLEID/);
    assert.match(target.remote.shown, /^:s3,provider=Minio,access_key_id=\[redacted\],secret_access_key=\[redacted\],endpoint='http:\/\/127\.0\.0\.1:9000':bucket\/boxes$/);
  });

  it('refuses a target without base-url, or with an unknown option: one line naming it (and the --help hint), exit 2', () => {
    for (const [to, message] of [
      ['rclone:remote:boxes', /--to rclone needs base-url=URL/],
      ['rclone:remote:boxes,base-url=http://x,speed=9', /unknown rclone target option "speed=9"/],
      ['rclone:', /--to rclone needs a remote/],
    ] as const) {
      const run = boxsmith(['publish', BOX, '--to', to]);
      assert.equal(run.status, 2, run.stderr);
      const [first, ...rest] = run.stderr.trim().split('\n');
      assert.match(first!, message);
      assert.deepEqual(rest, ['(boxsmith publish --help says how to use it)']);
    }
  });
});

describe('the rclone target without rclone', () => {
  it('says rclone is missing in one line, exit 1, and writes nothing', () => {
    const boxesDir = tempDir('boxsmith-rclone-boxes-');
    writeBuild(boxesDir, '1.0.0');
    const run = boxsmith(['publish', BOX, '--to', 'rclone:remote:boxes,base-url=http://127.0.0.1:1'], {
      BOXSMITH_BOXES: boxesDir,
      BOXSMITH_LOGS: tempDir('boxsmith-rclone-logs-'),
      BOXSMITH_RCLONE: '/nonexistent/rclone',
    });
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.equal(run.stderr.trim(), 'boxsmith: /nonexistent/rclone is not installed: rclone targets need Debian\'s rclone (setup/install.sh installs it)');
  });
});

describe('publishing through rclone to an SFTP server on 127.0.0.1 (small stand-in box files)', { skip: sftpSkipReason() }, () => {
  it('uploads, verifies and releases: the remote tree, the catalog, and vagrant box add by name from nginx serving the remote folder; a tampered box refused', async (t) => {
    const server = await sftp();
    // Debian's nginx with the configuration `nginx-conf` prints, in front of the SFTP server's folder;
    // boxsmith's own catalog server where nginx is missing.
    let catalogServer: { url: string };
    if (NGINX) {
      // nginx runs as nobody: the folders above the remote one must let it through.
      chmodSync(path.dirname(server.remoteDir), 0o755);
      catalogServer = { url: await serveWithNginx(t, server.remoteDir) };
    } else {
      const started = await startCatalogServer({ root: server.remoteDir, port: 0 });
      after(() => started.close());
      catalogServer = started;
    }
    const boxesDir = tempDir('boxsmith-rclone-boxes-');
    const logsDir = tempDir('boxsmith-rclone-logs-');
    const built = writeBuild(boxesDir, '1.0.0');
    const lines: string[] = [];
    const started = performance.now();
    const report = await publishBox({
      box: BOX,
      target: parseTarget(`rclone:${server.connection},base-url=${catalogServer.url}`),
      boxesDir,
      logsDir,
      env: {},
      log: (line) => lines.push(line),
    });
    console.log(`# publish of a ${built.size}-byte box through rclone/SFTP: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.ok(report.ok, JSON.stringify(report));
    assert.ok(report.released);
    assert.deepEqual(report.outcomes.map((o) => o.status), ['published']);
    assert.ok(lines.some((line) => /verified sha256 on the remote \(downloaded and hashed by rclone: the backend has no SHA-256\)/.test(line)), lines.join('\n'));

    assert.deepEqual(readdirSync(providerDir(server.remoteDir, '1.0.0')).sort(), ['amd64.box', 'amd64.box.sha256', 'amd64.record.json']);
    assert.equal(sha256Of(path.join(providerDir(server.remoteDir, '1.0.0'), 'amd64.box')), built.sha256);
    assert.ok(existsSync(path.join(server.remoteDir, '.boxsmith-folder')));
    const catalogText = readFileSync(path.join(server.remoteDir, ORG, BOX_NAME), 'utf8');
    assert.equal(readFileSync(path.join(server.remoteDir, ORG, `${BOX_NAME}.json`), 'utf8'), catalogText);
    const catalog = JSON.parse(catalogText) as { name: string; versions: Array<{ version: string; providers: Array<Record<string, unknown>> }> };
    assert.equal(catalog.name, NAME);
    assert.deepEqual(catalog.versions[0]!.providers[0], {
      name: 'libvirt',
      url: `${catalogServer.url}/${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.box`,
      checksum_type: 'sha256',
      checksum: built.sha256,
      architecture: 'amd64',
      default_architecture: true,
    });
    // No temporary upload is left on the remote.
    assert.deepEqual(readdirSync(path.join(server.remoteDir, ORG)).filter((name) => name.includes('boxsmith-upload')), []);

    // Published again: nothing is uploaded.
    const again = await publishBox({ box: BOX, target: parseTarget(`rclone:${server.connection},base-url=${catalogServer.url}`), boxesDir, logsDir, env: {}, log: () => {} });
    assert.deepEqual(again.outcomes.map((o) => o.status), ['unchanged']);

    if (!VAGRANT) return;
    const home = tempDir('boxsmith-rclone-vagrant-home-');
    assertAdded(await vagrant(['box', 'add', NAME], { home, serverUrl: catalogServer.url }), '1.0.0');

    const served = path.join(providerDir(server.remoteDir, '1.0.0'), 'amd64.box');
    const bytes = readFileSync(served);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    writeFileSync(served, bytes);
    const tamperedHome = tempDir('boxsmith-rclone-vagrant-home-');
    const refused = await vagrant(['box', 'add', NAME], { home: tamperedHome, serverUrl: catalogServer.url });
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /The checksum of the downloaded box did not match the expected\s+value/);
  });

  it('--keep 2: the oldest version leaves the catalog first, and its files are deleted after the new catalog is up', async () => {
    const server = await sftp();
    const boxesDir = tempDir('boxsmith-rclone-boxes-');
    const logsDir = tempDir('boxsmith-rclone-logs-');
    const target = parseTarget(`rclone:${server.connection},base-url=http://127.0.0.1:1/boxes`);
    for (const version of ['1.0.0', '1.1.0']) {
      writeBuild(boxesDir, version);
      assert.ok((await publishBox({ box: BOX, version, target, boxesDir, logsDir, keep: 2, env: {}, log: () => {} })).ok);
    }
    writeBuild(boxesDir, '1.2.0');
    const lines: string[] = [];
    const report = await publishBox({ box: BOX, version: '1.2.0', target, boxesDir, logsDir, keep: 2, env: {}, log: (line) => lines.push(line) });
    assert.ok(report.ok);
    assert.deepEqual(report.droppedVersions, ['1.0.0']);
    const catalog = JSON.parse(readFileSync(path.join(server.remoteDir, ORG, BOX_NAME), 'utf8')) as { versions: Array<{ version: string }> };
    assert.deepEqual(catalog.versions.map((v) => v.version), ['1.2.0', '1.1.0']);
    assert.ok(!existsSync(path.join(server.remoteDir, ORG, 'boxes', BOX_NAME, 'versions', '1.0.0')));
    assert.ok(existsSync(providerDir(server.remoteDir, '1.1.0')));
    // The order, from boxsmith's own lines: upload, verification, then the deletion.
    const upload = lines.findIndex((line) => line.startsWith('uploading '));
    const deleted = lines.findIndex((line) => /^deleted .*versions\/1\.0\.0 \(not among the versions kept\)/.test(line));
    assert.ok(upload >= 0 && deleted > upload, lines.join('\n'));
  });

  it('--dry-run says what it would upload and write, and writes nothing to the remote', async () => {
    const server = await sftp();
    const boxesDir = tempDir('boxsmith-rclone-boxes-');
    writeBuild(boxesDir, '1.0.0');
    const lines: string[] = [];
    const target = parseTarget(`rclone:${server.connection}/tree,base-url=http://127.0.0.1:1`);
    const report = await publishBox({ box: BOX, target, boxesDir, logsDir: tempDir('boxsmith-rclone-logs-'), dryRun: true, env: {}, log: (line) => lines.push(line) });
    assert.ok(report.ok && report.dryRun && !report.released);
    assert.deepEqual(report.outcomes.map((o) => o.status), ['planned']);
    assert.ok(lines.some((line) => /^\[dry run\] would upload .*libvirt\.box to :sftp,.*\/tree\/phusion\/boxes\/ubuntu-14\.04-amd64\/versions\/1\.0\.0\/providers\/libvirt\/amd64\.box$/.test(line)), lines.join('\n'));
    assert.ok(lines.some((line) => /^\[dry run\] would write the catalog .* with versions 1\.0\.0$/.test(line)), lines.join('\n'));
    assert.deepEqual(readdirSync(server.remoteDir), []);
  });

  it('refuses a remote folder that holds files boxsmith did not write, and writes nothing into it', async () => {
    const server = await sftp();
    mkdirSync(path.join(server.remoteDir, 'photos'));
    writeFileSync(path.join(server.remoteDir, 'photos', 'cat.jpg'), 'not a box');
    const boxesDir = tempDir('boxsmith-rclone-boxes-');
    writeBuild(boxesDir, '1.0.0');
    const run = boxsmith(['publish', BOX, '--to', `rclone:${server.connection},base-url=http://127.0.0.1:1`], {
      BOXSMITH_BOXES: boxesDir,
      BOXSMITH_LOGS: tempDir('boxsmith-rclone-logs-'),
    });
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /^boxsmith: :sftp,.*already holds files boxsmith did not write \(no \.boxsmith-folder in it\)/m);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.deepEqual(readdirSync(server.remoteDir), ['photos']);
  });

  it('a named remote of a throw-away rclone config (RCLONE_CONFIG), which stays byte for byte as it was', async () => {
    const server = await sftp();
    const dir = tempDir('boxsmith-rclone-config-');
    const config = path.join(dir, 'rclone.conf');
    // The connection string's parameters, as a config file has them.
    const parameters = /^:sftp,(.*):[^:]*$/.exec(server.connection)![1]!.split(',');
    const text = ['[boxes-sftp]', 'type = sftp', ...parameters.map((p) => p.replace('=', ' = ')), ''].join('\n');
    writeFileSync(config, text);
    const boxesDir = tempDir('boxsmith-rclone-boxes-');
    writeBuild(boxesDir, '1.0.0');
    const run = boxsmith(['publish', BOX, '--to', `rclone:boxes-sftp:${server.remoteDir}/named,base-url=http://127.0.0.1:1`], {
      BOXSMITH_BOXES: boxesDir,
      BOXSMITH_LOGS: tempDir('boxsmith-rclone-logs-'),
      RCLONE_CONFIG: config,
    });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /published phusion\/ubuntu-14\.04-amd64 1\.0\.0 to rclone:boxes-sftp:/);
    assert.ok(existsSync(path.join(server.remoteDir, 'named', ORG, BOX_NAME)));
    assert.equal(readFileSync(config, 'utf8'), text, 'rclone saved nothing into the config');
  });

  it('a password in the connection string appears in no line, report or log boxsmith writes', async () => {
    const server = await sftp();
    const boxesDir = tempDir('boxsmith-rclone-boxes-');
    const logsDir = tempDir('boxsmith-rclone-logs-');
    writeBuild(boxesDir, '1.0.0');
    // The key logs in; the (obscured, unused) password must still never be shown.
    const secret = 'Sup3rSecretObscuredPass';
    const run = boxsmith(['publish', BOX, '--to', `rclone:${server.connection.replace(':sftp,', `:sftp,pass=${secret},`)},base-url=http://127.0.0.1:1`], {
      BOXSMITH_BOXES: boxesDir,
      BOXSMITH_LOGS: logsDir,
    });
    const logs = readdirSync(logsDir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => readFileSync(path.join(entry.parentPath, entry.name), 'utf8'))
      .join('\n');
    assert.ok(logs.length > 0);
    for (const text of [run.stdout, run.stderr, logs]) assert.ok(!text.includes(secret), text);
    assert.match(run.stdout + run.stderr, /pass=\[redacted\]/);
  });
});
