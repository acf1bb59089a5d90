// Whether a nightly can get an installer box's ISO (src/inputs/iso.ts isoUnavailable): from the
// cache, a file URL, or an HTTP URL answering HEAD (a local server on 127.0.0.1 stands for the mirror).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { isoCachePath, isoUnavailable, type IsoSpec } from '../../src/inputs/iso.ts';
import { tempDir } from '../helpers.ts';

const CHECKSUM = `sha256:${'ab'.repeat(32)}`;
const network = { connectTimeoutMs: 2000, responseTimeoutMs: 2000, retries: 0 };

describe('a nightly asks whether an installer box could get its ISO, without downloading it', () => {
  let server: Server;
  let base: string;
  const methods: string[] = [];
  before(async () => {
    server = createServer((request, response) => {
      methods.push(`${request.method} ${request.url}`);
      response.writeHead(request.url === '/here.iso' ? 200 : 404, { 'content-length': '0' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const iso = (urls: string[]): IsoSpec => ({ file: 'ubuntu.iso', checksum: CHECKSUM, urls }) as IsoSpec;

  it('a URL that answers HEAD with 200 will do, asked by HEAD alone; the first that fails is named with why', async () => {
    const cacheDir = tempDir('boxsmith-iso-available-');
    methods.length = 0;
    assert.equal(await isoUnavailable(iso([`${base}/gone.iso`, `${base}/here.iso`]), { cacheDir, network }), undefined);
    assert.deepEqual(methods, ['HEAD /gone.iso', 'HEAD /here.iso']);
    const reason = await isoUnavailable(iso([`${base}/gone.iso`, 'http://127.0.0.1:1/x.iso']), { cacheDir, network });
    assert.match(reason!, /^its ISO ubuntu\.iso is not in the ISO cache and no URL serves it \(http:\/\/127\.0\.0\.1:\d+\/gone\.iso: HTTP 404 Not Found; http:\/\/127\.0\.0\.1:1\/x\.iso: connection refused \(ECONNREFUSED\)\); to supply it by hand, copy it to /);
    assert.ok(reason!.endsWith(isoCachePath(iso([]), cacheDir)), reason);
  });

  it('an ISO in the cache, or at a file URL, is there whatever the URLs say', async () => {
    const cacheDir = tempDir('boxsmith-iso-available-');
    const local = path.join(cacheDir, 'local.iso');
    writeFileSync(local, 'iso');
    assert.equal(await isoUnavailable(iso(['http://127.0.0.1:1/x.iso', pathToFileURL(local).href]), { cacheDir, network }), undefined);
    assert.match((await isoUnavailable(iso([pathToFileURL(`${local}.missing`).href]), { cacheDir, network }))!, /local\.iso\.missing: no such file/);
    const cached = isoCachePath(iso([]), cacheDir);
    mkdirSync(path.dirname(cached), { recursive: true });
    writeFileSync(cached, 'iso');
    assert.equal(await isoUnavailable(iso(['http://127.0.0.1:1/x.iso']), { cacheDir, network }), undefined);
  });
});
