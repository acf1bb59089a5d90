// The ISO cache against a local server on 127.0.0.1 standing in for the Ubuntu mirrors: downloads,
// resumes, mirror fallback, stalls, aborts, verification, and the SHA256SUMS a release publishes.
// Nothing here touches the network beyond 127.0.0.1; every cache is a temporary folder.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import {
  ChecksumFileError,
  checkPinnedChecksum,
  ensureIso,
  fetchChecksum,
  IsoChecksumMismatchError,
  isoCachePath,
  IsoUnavailableError,
  parseChecksumFile,
  PinnedChecksumMismatchError,
  type EnsureIsoOptions,
  type IsoProgress,
  type IsoSpec,
  type NetworkSettings,
} from '../../src/inputs/iso.ts';
import { tempDir } from '../helpers.ts';

const FILE = 'ubuntu-14.04.6-server-amd64.iso';
const ISO = randomBytes(4 * 1024 * 1024);
const HALF = ISO.length / 2;
const ISO_SHA256 = createHash('sha256').update(ISO).digest('hex');

/** Short timeouts and back-off so failures take milliseconds; generous enough for a slow CI host. */
const FAST: Partial<NetworkSettings> = {
  connectTimeoutMs: 5_000,
  responseTimeoutMs: 5_000,
  idleTimeoutMs: 5_000,
  retries: 2,
  maxRetryDelayMs: 20,
};

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** A local HTTP server with a handler per path, recording each request's path and Range header. */
class LocalMirror {
  readonly seen: { path: string; range: string | undefined }[] = [];
  private readonly handlers = new Map<string, Handler>();
  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const requestPath = request.url ?? '/';
      this.seen.push({ path: requestPath, range: request.headers.range });
      const handler = this.handlers.get(requestPath);
      if (handler) handler(request, response);
      else response.writeHead(404).end('not found');
    });
  }

  static async start(): Promise<LocalMirror> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new LocalMirror(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  /** Serves `handler` at `urlPath` (replacing an earlier one) and returns its URL. */
  route(urlPath: string, handler: Handler): string {
    this.handlers.set(urlPath, handler);
    return this.origin + urlPath;
  }

  /** The Range header of each request for a URL, in order (undefined: no Range). */
  rangesOf(url: string): (string | undefined)[] {
    const urlPath = new URL(url).pathname;
    return this.seen.filter((request) => request.path === urlPath).map((request) => request.range);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections(); // stalled responses never end by themselves
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A file server as mirrors are: honours `Range: bytes=N-` with 206, or 416 past the end. */
function serveFile(body: Buffer, { honorRange = true } = {}): Handler {
  return (request, response) => {
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    if (range && honorRange) {
      const start = Number(range[1]);
      if (start >= body.length) {
        response.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      response.writeHead(206, {
        'content-type': 'application/x-iso9660-image',
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      response.end(body.subarray(start));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/x-iso9660-image', 'content-length': body.length });
    response.end(body);
  };
}

/**
 * The first request gets `bytes` of the body; its socket is destroyed when the test calls `cut()`,
 * which it does once the client has all of them (got drops bytes still buffered when a socket dies,
 * so cutting at once would make the resume offset depend on timing). Later requests go to `then`.
 */
function cutOnceAfter(bytes: number, then: Handler): { handler: Handler; cut: () => void } {
  let firstResponse: ServerResponse | undefined;
  let cutDone = false;
  const handler: Handler = (request, response) => {
    if (firstResponse) return then(request, response);
    firstResponse = response;
    response.writeHead(200, { 'content-type': 'application/x-iso9660-image', 'content-length': ISO.length });
    response.write(ISO.subarray(0, bytes));
  };
  const cut = () => {
    if (cutDone) return;
    cutDone = true;
    firstResponse?.socket?.destroy();
  };
  return { handler, cut };
}

/** Headers and `bytes` of the body, then silence with the connection open. */
function stallAfter(bytes: number): Handler {
  return (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/x-iso9660-image', 'content-length': ISO.length });
    response.write(ISO.subarray(0, bytes));
  };
}

function status(code: number): Handler {
  return (_request, response) => {
    response.writeHead(code, { 'content-type': 'text/plain' }).end(`${code}\n`);
  };
}

function isoAt(urls: string[], checksum = `sha256:${ISO_SHA256}`): IsoSpec {
  return { file: FILE, urls, checksum };
}

/** Every file below a folder, relative to it. */
function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => statSync(path.join(dir, name)).isFile())
    .sort();
}

let mirror: LocalMirror;
/** A URL on 127.0.0.1 where nothing listens: the port of a server that has been closed. */
let refusedUrl: string;

before(async () => {
  mirror = await LocalMirror.start();
  const closed = await LocalMirror.start();
  refusedUrl = `${closed.origin}/releases/${FILE}`;
  await closed.close();
});
after(() => mirror.close());

describe('ensureIso against a local server standing in for the mirrors', () => {
  it('downloads into an empty cache, verifies it and writes the sidecar; the next call uses the cache with no request', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/fresh/ubuntu.iso', serveFile(ISO));
    const progress: IsoProgress[] = [];
    const iso = isoAt([url]);

    const downloaded = await ensureIso(iso, { cacheDir, network: FAST, onProgress: (p) => progress.push(p) });
    const expectedPath = path.join(cacheDir, 'iso', `sha256-${ISO_SHA256}`, FILE);
    assert.deepEqual(downloaded, { path: expectedPath, checksum: `sha256:${ISO_SHA256}`, source: 'download', url });
    assert.ok(readFileSync(expectedPath).equals(ISO));
    assert.deepEqual(filesBelow(path.dirname(expectedPath)), [FILE, `${FILE}.verified`]);
    const sidecar = JSON.parse(readFileSync(`${expectedPath}.verified`, 'utf8')) as Record<string, unknown>;
    assert.equal(sidecar.checksum, `sha256:${ISO_SHA256}`);
    assert.equal(sidecar.size, ISO.length);
    assert.deepEqual(progress.at(-1), { url, received: ISO.length, total: ISO.length, resumedFrom: 0 });

    const again = await ensureIso(iso, { cacheDir, network: FAST });
    assert.deepEqual(again, { path: expectedPath, checksum: `sha256:${ISO_SHA256}`, source: 'cache' });
    assert.equal(mirror.rangesOf(url).length, 1, 'the second call made no request');
  });

  it('resumes a download the local server cut off halfway, asking for Range: bytes=<half>-', async () => {
    const cacheDir = tempDir();
    const { handler, cut } = cutOnceAfter(HALF, serveFile(ISO));
    const url = mirror.route('/cut/ubuntu.iso', handler);
    const progress: IsoProgress[] = [];
    const onProgress = (p: IsoProgress) => {
      progress.push(p);
      if (p.received === HALF) cut();
    };

    const result = await ensureIso(isoAt([url]), { cacheDir, network: FAST, progressIntervalMs: 0, onProgress });
    assert.deepEqual(mirror.rangesOf(url), [undefined, `bytes=${HALF}-`]);
    assert.equal(result.source, 'download');
    assert.ok(readFileSync(result.path).equals(ISO));
    assert.ok(progress.some((p) => p.resumedFrom === HALF), 'progress reports the resume');
    assert.deepEqual(progress.at(-1), { url, received: ISO.length, total: ISO.length, resumedFrom: HALF });
  });

  it('starts again from byte 0 when the local server ignores Range and answers 200 with the whole file', async () => {
    const cacheDir = tempDir();
    const { handler, cut } = cutOnceAfter(HALF, serveFile(ISO, { honorRange: false }));
    const url = mirror.route('/no-range/ubuntu.iso', handler);
    const progress: IsoProgress[] = [];
    const onProgress = (p: IsoProgress) => {
      progress.push(p);
      if (p.received === HALF) cut();
    };

    const result = await ensureIso(isoAt([url]), { cacheDir, network: FAST, progressIntervalMs: 0, onProgress });
    assert.deepEqual(mirror.rangesOf(url), [undefined, `bytes=${HALF}-`]);
    assert.ok(readFileSync(result.path).equals(ISO));
    assert.deepEqual(progress.at(-1), { url, received: ISO.length, total: ISO.length, resumedFrom: 0 });
  });

  it('rejects a download from the local server that does not match the pinned checksum and leaves nothing in the cache', async () => {
    const cacheDir = tempDir();
    const other = randomBytes(ISO.length);
    const otherSha256 = createHash('sha256').update(other).digest('hex');
    const url = mirror.route('/tampered/ubuntu.iso', serveFile(other));

    await assert.rejects(ensureIso(isoAt([url]), { cacheDir, network: FAST }), (error: unknown) => {
      assert.ok(error instanceof IsoChecksumMismatchError);
      assert.match(error.message, new RegExp(`checksum mismatch for ${FILE} downloaded from ${url}`));
      assert.match(error.message, new RegExp(`expected sha256:${ISO_SHA256}, got sha256:${otherSha256}`));
      assert.match(error.message, /download was deleted/);
      return true;
    });
    assert.deepEqual(filesBelow(cacheDir), [], 'no .part, ISO, sidecar or lock is left');
  });

  it('falls back from a refused connection, a 404, a 500 and a web page to the next local server URL and says which one served', async () => {
    const cacheDir = tempDir();
    const portal = mirror.route('/fallback/portal.iso', (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html>Please log in</html>');
    });
    const missing = mirror.route('/fallback/missing.iso', status(404));
    const broken = mirror.route('/fallback/broken.iso', status(500));
    const good = mirror.route('/fallback/ubuntu.iso', serveFile(ISO));
    const warnings: string[] = [];

    const result = await ensureIso(isoAt([refusedUrl, portal, missing, broken, good]), {
      cacheDir,
      network: { ...FAST, retries: 1 },
      onWarning: (message) => warnings.push(message),
    });
    assert.equal(result.url, good);
    assert.equal(result.source, 'download');
    assert.ok(readFileSync(result.path).equals(ISO));
    assert.equal(mirror.rangesOf(broken).length, 2, 'got retried the 500 once before moving on');
    assert.deepEqual(warnings, [
      `${refusedUrl}: connection refused (ECONNREFUSED); trying the next URL`,
      `${portal}: served a web page (Content-Type: text/html; charset=utf-8), not the file; trying the next URL`,
      `${missing}: HTTP 404 Not Found; trying the next URL`,
      `${broken}: HTTP 500 Internal Server Error; retry 1 of 1`,
      `${broken}: HTTP 500 Internal Server Error (after 1 retry); trying the next URL`,
    ]);
  });

  it('lists every failed local server URL and the cache path for the ISO; a copy placed there by hand is then used with no request', async () => {
    const cacheDir = tempDir();
    const missing = mirror.route('/offline/missing.iso', status(404));
    const broken = mirror.route('/offline/broken.iso', status(503));
    const iso = isoAt([refusedUrl, missing, broken]);
    const expectedPath = path.join(cacheDir, 'iso', `sha256-${ISO_SHA256}`, FILE);
    assert.equal(isoCachePath(iso, cacheDir), expectedPath);

    const error = await ensureIso(iso, { cacheDir, network: FAST }).then(
      () => assert.fail('expected IsoUnavailableError'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof IsoUnavailableError);
    assert.equal(error.cachePath, expectedPath);
    assert.deepEqual(
      error.failures.map((failure) => failure.url),
      [refusedUrl, missing, broken],
    );
    const lines = error.message.split('\n');
    assert.equal(lines[0], `could not download ${FILE} from any of its URLs:`);
    assert.equal(lines[1], `  ${refusedUrl}: connection refused (ECONNREFUSED)`);
    assert.equal(lines[2], `  ${missing}: HTTP 404 Not Found`);
    assert.equal(lines[3], `  ${broken}: HTTP 503 Service Unavailable (after 2 retries)`);
    assert.match(lines[4]!, new RegExp(`copy the ISO into the cache, where it is verified against sha256:${ISO_SHA256}`));
    assert.equal(lines[5], `  mkdir -p ${path.dirname(expectedPath)}`);
    assert.equal(lines[6], `  cp ${FILE} ${expectedPath}`);

    // What the message tells the user to do, then the same call again.
    mkdirSync(path.dirname(expectedPath), { recursive: true });
    writeFileSync(expectedPath, ISO);
    const requestsBefore = mirror.seen.length;
    const result = await ensureIso(iso, { cacheDir, network: FAST });
    assert.deepEqual(result, { path: expectedPath, checksum: `sha256:${ISO_SHA256}`, source: 'cache' });
    assert.equal(mirror.seen.length, requestsBefore, 'no request once the ISO is in place');
    assert.ok(existsSync(`${expectedPath}.verified`), 'the hand-placed copy was verified and recorded');
  });

  it('moves on from a stalled local server within the idle timeout and resumes from the next URL', async () => {
    const cacheDir = tempDir();
    const stalledBytes = 256 * 1024;
    const stalled = mirror.route('/stall/ubuntu.iso', stallAfter(stalledBytes));
    const good = mirror.route('/stall/good/ubuntu.iso', serveFile(ISO));
    const warnings: string[] = [];

    const result = await ensureIso(isoAt([stalled, good]), {
      cacheDir,
      network: { ...FAST, idleTimeoutMs: 1000, retries: 0 },
      onWarning: (message) => warnings.push(message),
    });
    assert.equal(result.url, good);
    assert.ok(readFileSync(result.path).equals(ISO));
    assert.deepEqual(warnings, [`${stalled}: stalled: no data for 1 s; trying the next URL`]);
    // The bytes the stalled mirror did send are kept: the same file, keyed by the same checksum.
    assert.deepEqual(mirror.rangesOf(good), [`bytes=${stalledBytes}-`]);
  });

  it('stops a local server download on abort, keeps the .part, and the next call resumes from it', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/abort/ubuntu.iso', stallAfter(HALF));
    const partPath = `${isoCachePath(isoAt([url]), cacheDir)}.part`;
    const controller = new AbortController();
    const options: EnsureIsoOptions = {
      cacheDir,
      network: FAST,
      signal: controller.signal,
      progressIntervalMs: 0,
      onProgress: (p) => {
        if (p.received > 0) controller.abort();
      },
    };

    await assert.rejects(ensureIso(isoAt([url]), options), { name: 'AbortError' });
    const kept = statSync(partPath).size;
    assert.ok(kept > 0 && kept <= HALF, `the .part keeps what arrived (${kept} bytes)`);
    assert.ok(!existsSync(partPath.replace(/\.part$/, '')), 'no final file');
    assert.ok(!existsSync(partPath.replace(/\.part$/, '.lock')), 'the lock is released');

    mirror.route('/abort/ubuntu.iso', serveFile(ISO));
    const result = await ensureIso(isoAt([url]), { cacheDir, network: FAST });
    assert.equal(mirror.rangesOf(url).at(-1), `bytes=${kept}-`);
    assert.ok(readFileSync(result.path).equals(ISO));
  });

  it('finishes a complete .part left by a crash when the local server answers 416', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/complete-part/ubuntu.iso', serveFile(ISO));
    const finalPath = isoCachePath(isoAt([url]), cacheDir);
    mkdirSync(path.dirname(finalPath), { recursive: true });
    writeFileSync(`${finalPath}.part`, ISO);

    const result = await ensureIso(isoAt([url]), { cacheDir, network: FAST });
    assert.deepEqual(mirror.rangesOf(url), [`bytes=${ISO.length}-`], 'one request, no body downloaded again');
    assert.ok(readFileSync(result.path).equals(ISO));
    assert.ok(!existsSync(`${finalPath}.part`));
  });

  it('starts over when a .part is longer than the file on the local server (416)', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/long-part/ubuntu.iso', serveFile(ISO));
    const finalPath = isoCachePath(isoAt([url]), cacheDir);
    mkdirSync(path.dirname(finalPath), { recursive: true });
    writeFileSync(`${finalPath}.part`, Buffer.concat([ISO, Buffer.from('trailing garbage')]));

    const result = await ensureIso(isoAt([url]), { cacheDir, network: FAST });
    assert.deepEqual(mirror.rangesOf(url), [`bytes=${ISO.length + 16}-`, undefined]);
    assert.ok(readFileSync(result.path).equals(ISO));
  });

  it('re-hashes a cached file whose mtime changed: still intact, it is used with no request', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/touched/ubuntu.iso', serveFile(ISO));
    const { path: cached } = await ensureIso(isoAt([url]), { cacheDir, network: FAST });
    const mtimeNsOf = () => (JSON.parse(readFileSync(`${cached}.verified`, 'utf8')) as { mtimeNs: string }).mtimeNs;
    const recordedBefore = mtimeNsOf();
    utimesSync(cached, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));

    const result = await ensureIso(isoAt([url]), { cacheDir, network: FAST });
    assert.equal(result.source, 'cache');
    assert.equal(mirror.rangesOf(url).length, 1);
    assert.notEqual(mtimeNsOf(), recordedBefore, 'the sidecar records the new mtime');
    assert.equal(mtimeNsOf(), statSync(cached, { bigint: true }).mtimeNs.toString());
  });

  it('replaces a cached file that changed after it was verified with a fresh download from the local server', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/corrupted/ubuntu.iso', serveFile(ISO));
    const { path: cached } = await ensureIso(isoAt([url]), { cacheDir, network: FAST });
    writeFileSync(cached, randomBytes(ISO.length)); // same size, other bytes, new mtime
    const warnings: string[] = [];

    const result = await ensureIso(isoAt([url]), { cacheDir, network: FAST, onWarning: (message) => warnings.push(message) });
    assert.equal(result.source, 'download');
    assert.ok(readFileSync(result.path).equals(ISO));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /is not the ISO the definition pins .*: removed, fetching it again/);
  });

  it('downloads once when two builds ask for the same ISO from the local server at the same time', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/shared/ubuntu.iso', serveFile(ISO));
    const results = await Promise.all([
      ensureIso(isoAt([url]), { cacheDir, network: FAST }),
      ensureIso(isoAt([url]), { cacheDir, network: FAST }),
    ]);
    assert.deepEqual(results.map((result) => result.source).sort(), ['cache', 'download']);
    assert.equal(mirror.rangesOf(url).length, 1);
    assert.equal(results[0]!.path, results[1]!.path);
  });

  it('copies from a file:// URL, which the schema allows', async () => {
    const cacheDir = tempDir();
    const local = path.join(tempDir(), FILE);
    writeFileSync(local, ISO);
    const result = await ensureIso(isoAt([pathToFileURL(local).href]), { cacheDir, network: FAST });
    assert.equal(result.source, 'download');
    assert.ok(readFileSync(result.path).equals(ISO));
  });
});

describe('release checksum files', () => {
  const hex = 'b17d7c1e9d0321ad5810ba77b69aef43f0f29a5422b08120e6ee0576c4527c0e';
  const other = 'af224223de99e2a730b67d7785b657f549be0d63221188e105445f75fb8305c9';

  it('reads GNU text-mode lines (hash, two spaces, name)', () => {
    const text = `${other}  ubuntu-14.04.6-desktop-amd64.iso\n${hex}  ${FILE}\n`;
    assert.equal(parseChecksumFile(text, FILE), `sha256:${hex}`);
  });

  it('reads GNU binary-mode lines (hash, space, *name) as Ubuntu publishes them, with CRLF and ./ too', () => {
    assert.equal(parseChecksumFile(`${other} *ubuntu-14.04.6-desktop-amd64.iso\n${hex} *${FILE}\n`, FILE), `sha256:${hex}`);
    assert.equal(parseChecksumFile(`${hex.toUpperCase()} *./${FILE}\r\n`, FILE), `sha256:${hex}`);
  });

  it('reads BSD-style lines and tells algorithms apart', () => {
    assert.equal(parseChecksumFile(`SHA256 (ubuntu-14.04.6-desktop-amd64.iso) = ${other}\nSHA256 (${FILE}) = ${hex}\n`, FILE), `sha256:${hex}`);
    assert.equal(parseChecksumFile(`SHA2-256(${FILE})= ${hex}\n`, FILE), `sha256:${hex}`);
    const md5 = 'd41d8cd98f00b204e9800998ecf8427e';
    assert.equal(parseChecksumFile(`MD5 (${FILE}) = ${md5}\n`, FILE), `md5:${md5}`);
    assert.equal(parseChecksumFile(`${md5}  ${FILE}\n`, FILE), `md5:${md5}`);
  });

  it('skips the armour of a signed checksum file', () => {
    const signed = `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${hex} *${FILE}\n-----BEGIN PGP SIGNATURE-----\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n`;
    assert.equal(parseChecksumFile(signed, FILE), `sha256:${hex}`);
  });

  it('says clearly when the file is not listed, naming what is', () => {
    assert.throws(
      () => parseChecksumFile(`${other} *ubuntu-14.04.6-desktop-amd64.iso\n`, FILE, 'http://releases.ubuntu.com/14.04/SHA256SUMS'),
      (error: unknown) =>
        error instanceof ChecksumFileError &&
        error.message ===
          `${FILE} is not listed in http://releases.ubuntu.com/14.04/SHA256SUMS (it lists ubuntu-14.04.6-desktop-amd64.iso)`,
    );
    assert.throws(() => parseChecksumFile('', FILE), /is not listed in the checksum file \(it has no checksum lines\)/);
  });

  it('refuses a file listed twice with different checksums', () => {
    assert.throws(() => parseChecksumFile(`${hex}  ${FILE}\n${other}  ${FILE}\n`, FILE), /lists .* with different checksums/);
  });

  it('fetches SHA256SUMS from the local server; comparing a pin with it needs the keyring that signs it', async () => {
    const sums = mirror.route('/sums/SHA256SUMS', (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' }).end(`${other} *ubuntu-14.04.6-desktop-amd64.iso\n${ISO_SHA256} *${FILE}\n`);
    });
    assert.equal(await fetchChecksum(sums, FILE, { network: FAST }), `sha256:${ISO_SHA256}`);
    // The signed comparison (gpgv, valid, tampered and missing signatures) is in test/checksums.test.ts.
    await assert.rejects(checkPinnedChecksum({ ...isoAt([refusedUrl]), checksum_url: sums }, { network: FAST }), /has no checksum_keyring/);
  });

  it('cross-checks the pinned checksum with the local server before using the cache: a difference is an error', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/cross-check/ubuntu.iso', serveFile(ISO));
    const sums = mirror.route('/cross-check/SHA256SUMS', (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' }).end(`${hex} *${FILE}\n`);
    });
    await assert.rejects(
      ensureIso({ ...isoAt([url]), checksum_url: sums }, { cacheDir, network: FAST, verifyChecksumUrl: true }),
      (error: unknown) =>
        error instanceof PinnedChecksumMismatchError &&
        error.message.includes(`(sha256:${ISO_SHA256}) differs from the one published at ${sums} (sha256:${hex})`),
    );
    assert.equal(mirror.rangesOf(url).length, 0, 'nothing downloaded');
  });

  it('only warns when the checksum_url cannot be reached, and goes on with the pinned checksum', async () => {
    const cacheDir = tempDir();
    const url = mirror.route('/cross-check-offline/ubuntu.iso', serveFile(ISO));
    const warnings: string[] = [];
    const result = await ensureIso(
      { ...isoAt([url]), checksum_url: refusedUrl.replace(FILE, 'SHA256SUMS') },
      { cacheDir, network: FAST, verifyChecksumUrl: true, onWarning: (message) => warnings.push(message) },
    );
    assert.equal(result.source, 'download');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /could not cross-check the pinned checksum of .* connection refused \(ECONNREFUSED\)$/);
  });
});
