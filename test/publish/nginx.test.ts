// `boxsmith nginx-conf`: the configuration it prints is the one docs/hosting.md shows, and Debian's
// nginx runs it as is (as an unprivileged user, `nginx -p PREFIX -c FILE -g 'daemon off;'`) on
// 127.0.0.1 in front of a published tree: catalogs by name and by .json URL as application/json on
// HEAD and GET, box files with byte ranges, and Debian's vagrant adding the box by name, then
// seeing a second version with `box outdated`, `box update` and `box prune`.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { nginxServerBlock } from '../../src/publish/nginx-conf.ts';
import { publishBox } from '../../src/publish/publish.ts';
import { boxsmith, REPO_ROOT, tempDir } from '../helpers.ts';
import { BOX, BOX_NAME, NAME, ORG, writeBuild } from './helpers.ts';
import { assertAdded, VAGRANT, vagrant } from './vagrant-client.ts';
import { freePort, groupMembers, NGINX, startNginx, stopNginx, waitForHttp } from './nginx-server.ts';

describe('nginx-conf', () => {
  it('prints a whole nginx.conf whose server block is the one docs/hosting.md shows', () => {
    const tree = tempDir('boxsmith-nginx-conf-');
    const printed = boxsmith(['nginx-conf', tree, '--port', '8099']);
    assert.equal(printed.status, 0, printed.stderr);
    assert.ok(printed.stdout.includes(indent(nginxServerBlock({ root: tree, port: 8099 }))), printed.stdout);
    // What docs/hosting.md shows is the same function's output for /srv/boxes.
    const docs = readFileSync(path.join(REPO_ROOT, 'docs/hosting.md'), 'utf8');
    assert.ok(docs.includes(`\`\`\`nginx\n${nginxServerBlock({ root: '/srv/boxes', port: 8099 })}\n\`\`\``), 'docs/hosting.md shows the server block nginx-conf prints (regenerate it from nginxServerBlock)');
    // Nothing that needs root or lives outside the prefix.
    assert.doesNotMatch(printed.stdout, /^\s*user\s/m);
    for (const directive of ['pid', 'error_log', 'access_log', 'client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path']) {
      assert.match(printed.stdout, new RegExp(`^\\s*${directive} [^/\\s][^;]*;`, 'm'), `${directive} is relative to the prefix`);
    }
  });

  it('has --help, and refuses a missing folder or a path nginx would misread in one line', () => {
    const help = boxsmith(['nginx-conf', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /usage: boxsmith nginx-conf <DIR> \[options\]/);
    assert.match(help.stdout, /--port P/);
    const missing = boxsmith(['nginx-conf', '/nonexistent/boxsmith-tree']);
    assert.notEqual(missing.status, 0);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    assert.match(missing.stderr, /\/nonexistent\/boxsmith-tree is not a folder/);
    const odd = path.join(tempDir('boxsmith-nginx-conf-'), 'a$b');
    assert.throws(() => nginxServerBlock({ root: odd, port: 1 }), /would read as syntax or a variable/);
    const badPort = boxsmith(['nginx-conf', tempDir('boxsmith-nginx-conf-'), '--port', '0']);
    assert.equal(badPort.status, 2, badPort.stderr);
  });
});

describe('Debian nginx serving a published tree (stand-in boxes)', { skip: !NGINX ? 'nginx is not installed (setup/install.sh installs it)' : !VAGRANT ? 'vagrant is not installed' : false }, () => {
  it('serves catalogs as JSON on HEAD and GET and boxes with ranges; vagrant adds by name, then sees, updates to and prunes for a second version', async (t) => {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const root = tempDir('boxsmith-nginx-tree-');
    const boxesDir = tempDir('boxsmith-nginx-boxes-');
    const prefix = tempDir('boxsmith-nginx-prefix-');
    const publish = async (version: string) => {
      writeBuild(boxesDir, version);
      const report = await publishBox({ box: BOX, version, target: { kind: 'static', root, baseUrl }, boxesDir, env: {}, log: () => {} });
      assert.ok(report.ok);
    };
    await publish('1.0.0');

    const conf = boxsmith(['nginx-conf', root, '--port', String(port)]);
    assert.equal(conf.status, 0, conf.stderr);
    writeFileSync(path.join(prefix, 'nginx.conf'), conf.stdout);
    const nginx = startNginx(prefix, root);
    t.after(() => stopNginx(nginx));
    await waitForHttp(`${baseUrl}/${NAME}.json`, nginx);

    // Catalogs: by name (no extension) and by .json URL, JSON on HEAD as on GET.
    for (const url of [`${baseUrl}/${NAME}`, `${baseUrl}/${NAME}.json`]) {
      for (const method of ['HEAD', 'GET']) {
        const response = await fetch(url, { method });
        assert.equal(response.status, 200, `${method} ${url}`);
        assert.equal(response.headers.get('content-type'), 'application/json', `${method} ${url}`);
        assert.equal(response.headers.get('cache-control'), 'no-cache');
        if (method === 'GET') assert.equal(((await response.json()) as { name: string }).name, NAME);
      }
    }
    // A box: a byte range (how vagrant resumes), and its checksum file.
    const boxUrl = `${baseUrl}/${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.box`;
    const boxBytes = readFileSync(path.join(root, ORG, 'boxes', BOX_NAME, 'versions/1.0.0/providers/libvirt/amd64.box'));
    const ranged = await fetch(boxUrl, { headers: { range: 'bytes=100-' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), `bytes 100-${boxBytes.length - 1}/${boxBytes.length}`);
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), boxBytes.subarray(100));
    assert.equal(ranged.headers.get('content-type'), 'application/octet-stream');
    const checksum = await fetch(`${boxUrl}.sha256`);
    assert.match(checksum.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await checksum.text(), /^[0-9a-f]{64} {2}amd64\.box\n$/);
    // What is not to be served.
    assert.equal((await fetch(`${baseUrl}/${ORG}/.${BOX_NAME}.lock`)).status, 404);
    assert.equal((await fetch(`${baseUrl}/.boxsmith-folder`)).status, 404);
    assert.equal((await fetch(`${baseUrl}/${NAME}`, { method: 'POST' })).status, 403);

    // vagrant by name through VAGRANT_SERVER_URL: HEAD, then GET of /<org>/<box> (nginx's access log).
    const home = tempDir('boxsmith-nginx-vagrant-home-');
    assertAdded(await vagrant(['box', 'add', NAME], { home, serverUrl: baseUrl }), '1.0.0');
    const requests = readFileSync(path.join(prefix, 'access.log'), 'utf8').split('\n').filter((line) => line.includes('Vagrant/'));
    const seen = requests.map((line) => /"(\w+) (\S+) HTTP\/[\d.]+" (\d+)/.exec(line)?.slice(1).join(' '));
    assert.deepEqual(seen.slice(0, 2), [`HEAD /${NAME} 200`, `GET /${NAME} 200`], requests.join('\n'));
    assert.ok(seen.includes(`GET /${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.box 200`), requests.join('\n'));

    // A second version published into the tree nginx serves.
    await publish('1.1.0');
    const outdated = await vagrant(['box', 'outdated', '--global'], { home, serverUrl: baseUrl });
    assert.equal(outdated.code, 0, outdated.output);
    assert.match(outdated.output, new RegExp(`'${NAME}' for 'libvirt' is outdated! Current: 1\\.0\\.0\\. Latest: 1\\.1\\.0`), outdated.output);
    const update = await vagrant(['box', 'update', '--box', NAME, '--provider', 'libvirt'], { home, serverUrl: baseUrl });
    assert.equal(update.code, 0, update.output);
    assert.match(update.output, /Successfully added box 'phusion\/ubuntu-14\.04-amd64' \(v1\.1\.0\) for 'libvirt'/);
    assert.match((await vagrant(['box', 'list'], { home })).output, /\(libvirt, 1\.0\.0\)[\s\S]*\(libvirt, 1\.1\.0\)/);
    const prune = await vagrant(['box', 'prune', '--force'], { home, serverUrl: baseUrl });
    assert.equal(prune.code, 0, prune.output);
    assert.match(prune.output, /Removing box 'phusion\/ubuntu-14\.04-amd64' \(v1\.0\.0\) with provider 'libvirt'/);
    const list = (await vagrant(['box', 'list'], { home })).output;
    assert.match(list, /^phusion\/ubuntu-14\.04-amd64 \(libvirt, 1\.1\.0\)$/m);
    assert.doesNotMatch(list, /1\.0\.0/);
    const upToDate = await vagrant(['box', 'outdated', '--global'], { home, serverUrl: baseUrl });
    assert.match(upToDate.output, new RegExp(`'${NAME}' for 'libvirt' \\(v1\\.1\\.0\\) is up to date`), upToDate.output);

    await stopNginx(nginx);
    assert.deepEqual(groupMembers(nginx.pid!), [], 'no nginx process is left');
  });
});

function indent(block: string): string {
  return block.replace(/^(?=.)/gm, '    ');
}
