// The catalog server: what vagrant needs (application/json on HEAD and GET for catalogs, byte
// ranges for resumed downloads) and what it must refuse (paths outside the tree, hidden files,
// writes).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listeningSockets, onLoopback } from '../sockets.ts';
import { contentTypeFor, parseRange, startCatalogServer, type CatalogServer } from '../../src/publish/server.ts';

const BOX_BYTES = randomBytes(100_000);
const CATALOG = '{"name":"phusion/ubuntu-14.04-amd64","versions":[]}\n';
const BOX_URL = '/phusion/boxes/ubuntu-14.04-amd64/versions/1.0.0/providers/libvirt/amd64.box';

let server: CatalogServer;
const requests: string[] = [];
// Made here rather than with tempDir(): an after() registered inside a before() hook runs when the hook ends.
const root = mkdtempSync(path.join(tmpdir(), 'boxsmith-serve-'));
const outside = mkdtempSync(path.join(tmpdir(), 'boxsmith-serve-outside-'));

before(async () => {
  mkdirSync(path.join(root, 'phusion/boxes/ubuntu-14.04-amd64/versions/1.0.0/providers/libvirt'), { recursive: true });
  writeFileSync(path.join(root, 'phusion/ubuntu-14.04-amd64'), CATALOG);
  writeFileSync(path.join(root, 'phusion/ubuntu-14.04-amd64.json'), CATALOG);
  writeFileSync(path.join(root, BOX_URL), BOX_BYTES);
  writeFileSync(path.join(root, 'phusion/.ubuntu-14.04-amd64.tmp-1-abcd'), 'half a catalog');
  writeFileSync(path.join(outside, 'secret'), 'not for the web');
  symlinkSync(path.join(outside, 'secret'), path.join(root, 'phusion/escape'));
  server = await startCatalogServer({ root, port: 0, onRequest: (line) => requests.push(line) });
});
after(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

function get(urlPath: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${server.url}${urlPath}`, init);
}

describe('catalog server', () => {
  it('listens on 127.0.0.1 only: the socket as ss lists it, not the URL it says', () => {
    const port = new URL(server.url).port;
    const mine = listeningSockets(new Set([process.pid])).filter((socket) => socket.split(' ')[1]!.endsWith(`:${port}`));
    assert.equal(mine.length, 1, `this process's sockets on port ${port}: ${mine.join(', ')}`);
    assert.ok(onLoopback(mine[0]!), mine[0]);
    assert.match(mine[0]!, new RegExp(`^tcp 127\\.0\\.0\\.1:${port} `));
  });

  it('answers HEAD and GET for /<org>/<box> as application/json (else vagrant unpacks it as a box)', async () => {
    for (const urlPath of ['/phusion/ubuntu-14.04-amd64', '/phusion/ubuntu-14.04-amd64.json']) {
      const head = await get(urlPath, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-type'), 'application/json');
      assert.equal(head.headers.get('content-length'), String(CATALOG.length));
      assert.equal(await head.text(), '');
      const response = await get(urlPath);
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.equal(response.headers.get('cache-control'), 'no-cache');
      assert.equal(await response.text(), CATALOG);
    }
  });

  it('serves box files whole, and byte ranges of them for resumed downloads', async () => {
    const whole = await get(BOX_URL);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-type'), 'application/octet-stream');
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.deepEqual(Buffer.from(await whole.arrayBuffer()), BOX_BYTES);

    const rest = await get(BOX_URL, { headers: { range: 'bytes=60000-' } });
    assert.equal(rest.status, 206);
    assert.equal(rest.headers.get('content-range'), `bytes 60000-99999/${BOX_BYTES.length}`);
    assert.deepEqual(Buffer.from(await rest.arrayBuffer()), BOX_BYTES.subarray(60000));

    const middle = await get(BOX_URL, { headers: { range: 'bytes=10-19' } });
    assert.deepEqual(Buffer.from(await middle.arrayBuffer()), BOX_BYTES.subarray(10, 20));
    const tail = await get(BOX_URL, { headers: { range: 'bytes=-5' } });
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), BOX_BYTES.subarray(-5));

    const beyond = await get(BOX_URL, { headers: { range: `bytes=${BOX_BYTES.length}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${BOX_BYTES.length}`);
    await beyond.arrayBuffer();
  });

  it('sends the whole file when If-Range names another version of it', async () => {
    const etag = (await get(BOX_URL, { method: 'HEAD' })).headers.get('etag')!;
    const same = await get(BOX_URL, { headers: { range: 'bytes=99990-', 'if-range': etag } });
    assert.equal(same.status, 206);
    await same.arrayBuffer();
    const changed = await get(BOX_URL, { headers: { range: 'bytes=99990-', 'if-range': '"another"' } });
    assert.equal(changed.status, 200);
    assert.equal((await changed.arrayBuffer()).byteLength, BOX_BYTES.length);
  });

  it('serves nothing outside the tree, no hidden files, no directories, and only GET and HEAD', async () => {
    for (const urlPath of ['/phusion/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/phusion/escape', '/phusion/.ubuntu-14.04-amd64.tmp-1-abcd', '/phusion/', '/', '/phusion/nothing']) {
      const response = await get(urlPath);
      assert.equal(response.status, 404, urlPath);
      await response.arrayBuffer();
    }
    const post = await get('/phusion/ubuntu-14.04-amd64', { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.arrayBuffer();
    assert.ok(requests.some((line) => /^GET \/phusion\/ubuntu-14\.04-amd64 200 \d+$/.test(line)));
  });
});

describe('content types and ranges', () => {
  it('types catalogs by place, not by extension: box names have dots', () => {
    assert.equal(contentTypeFor('/phusion/ubuntu-14.04-amd64'), 'application/json');
    assert.equal(contentTypeFor('/phusion/centos-7.9'), 'application/json');
    assert.equal(contentTypeFor('/phusion/ubuntu-14.04-amd64.json'), 'application/json');
    assert.equal(contentTypeFor(BOX_URL), 'application/octet-stream');
    assert.equal(contentTypeFor(`${BOX_URL}.sha256`), 'text/plain; charset=utf-8');
  });

  it('parses the Range forms vagrant and curl send', () => {
    assert.deepEqual(parseRange('bytes=0-99', 1000), { start: 0, end: 99 });
    assert.deepEqual(parseRange('bytes=500-', 1000), { start: 500, end: 999 });
    assert.deepEqual(parseRange('bytes=900-5000', 1000), { start: 900, end: 999 });
    assert.deepEqual(parseRange('bytes=-100', 1000), { start: 900, end: 999 });
    assert.equal(parseRange('bytes=1000-', 1000), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 1000), 'unsatisfiable');
    assert.equal(parseRange(undefined, 1000), null);
    assert.equal(parseRange('bytes=0-1,5-6', 1000), null, 'several ranges: the whole file');
    assert.equal(parseRange('items=0-1', 1000), null);
    assert.equal(parseRange('bytes=9-3', 1000), null);
  });
});
