// Faults of the ISO mirror and of the ISO cache, against a local HTTP server on 127.0.0.1 standing
// in for the mirrors: a stall and a dropped connection mid-body on the only URL (got retries it and
// the download resumes), wrong bytes after a resume, a corrupted .part left in the cache, and a
// stale lock. Each is said in the warnings the build log shows. test/inputs/iso.test.ts already
// covers: a cut resumed by Range, a server ignoring Range, a wholly wrong download rejected, a
// stall moving on to the next URL, an abort keeping the .part, and complete/overlong .part files.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, utimesSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureIso, IsoChecksumMismatchError, isoCachePath, type IsoProgress, type IsoSpec, type NetworkSettings } from '../../src/inputs/iso.ts';
import { tempDir } from '../helpers.ts';
import { claimFolder } from '../../src/files/owned-folder.ts';
import { buildSandbox } from '../build-sandbox.ts';
import { runIdsIn, snapshotFolder, snapshotHost, waitUntilClean, type LeftoverScope } from './leftovers.ts';

const FILE = 'ubuntu-14.04.6-server-amd64.iso';
const ISO = randomBytes(2 * 1024 * 1024);
const HALF = ISO.length / 2;
const ISO_SHA256 = createHash('sha256').update(ISO).digest('hex');
const FAST: Partial<NetworkSettings> = { connectTimeoutMs: 5_000, responseTimeoutMs: 5_000, idleTimeoutMs: 5_000, retries: 1, maxRetryDelayMs: 20 };

type Handler = (request: IncomingMessage, response: ServerResponse, nth: number) => void;
const routes = new Map<string, Handler>();
const seen: { path: string; range: string | undefined }[] = [];
let origin = '';
const server = createServer((request, response) => {
  const urlPath = request.url ?? '/';
  seen.push({ path: urlPath, range: request.headers.range });
  const handler = routes.get(urlPath);
  if (handler) handler(request, response, seen.filter((r) => r.path === urlPath).length);
  else response.writeHead(404).end();
});
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function route(urlPath: string, handler: Handler): string {
  routes.set(urlPath, handler);
  return origin + urlPath;
}
const rangesOf = (url: string) => seen.filter((r) => r.path === new URL(url).pathname).map((r) => r.range);

/** Serves `body` as mirrors do: `Range: bytes=N-` gets a 206 with the rest. */
function serve(body: Buffer, request: IncomingMessage, response: ServerResponse): void {
  const start = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? '')?.[1] ?? 0);
  if (start > 0) {
    response.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    response.end(body.subarray(start));
  } else {
    response.writeHead(200, { 'content-length': body.length });
    response.end(body);
  }
}

/** The first request gets the headers and `bytes` of the body, then silence; later ones the file. */
function stallOnceAfter(bytes: number): Handler {
  return (request, response, nth) => {
    if (nth > 1) return serve(ISO, request, response);
    response.writeHead(200, { 'content-length': ISO.length });
    response.write(ISO.subarray(0, bytes));
  };
}

const isoAt = (url: string): IsoSpec => ({ file: FILE, urls: [url], checksum: `sha256:${ISO_SHA256}` });

/** The cache folder of one case and the host snapshot it must return to. */
function faultCase(): { cacheDir: string; scope: LeftoverScope; host: ReturnType<typeof snapshotHost> } {
  const cacheDir = tempDir('boxsmith-fault-iso-');
  // In-process and without VMs: host-wide libvirt state belongs to whatever VM runs beside the suite.
  const scope: LeftoverScope = { folders: [cacheDir], libvirt: false };
  return { cacheDir, scope, host: snapshotHost(scope) };
}

/** The cache entry holds the verified ISO, its sidecar, and no .part or lock. */
function assertCachedIntact(iso: IsoSpec, cacheDir: string): void {
  const finalPath = isoCachePath(iso, cacheDir);
  assert.ok(readFileSync(finalPath).equals(ISO));
  assert.deepEqual(Object.keys(snapshotFolder(path.dirname(finalPath))).sort(), [FILE, `${FILE}.verified`]);
}

describe('ISO mirror faults (local server standing in for the mirrors)', () => {
  it('a stall mid-body on the only URL is ended by the idle limit, retried and resumed, and said', async () => {
    const { cacheDir, scope, host } = faultCase();
    const stalledBytes = 256 * 1024;
    const url = route('/stall/ubuntu.iso', stallOnceAfter(stalledBytes));
    const warnings: string[] = [];
    const result = await ensureIso(isoAt(url), { cacheDir, network: { ...FAST, idleTimeoutMs: 500 }, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(rangesOf(url), [undefined, `bytes=${stalledBytes}-`]);
    assert.deepEqual(warnings, [`${url}: stalled: no data for 500 ms; retry 1 of 1, resuming from byte ${stalledBytes}`]);
    assert.equal(result.source, 'download');
    assertCachedIntact(isoAt(url), cacheDir);
    assert.deepEqual(await waitUntilClean(host, scope), []);
  });

  it('a connection dropped mid-body on the only URL is retried and resumed, and said', async () => {
    const { cacheDir, scope, host } = faultCase();
    let first: ServerResponse | undefined;
    const url = route('/drop/ubuntu.iso', (request, response, nth) => {
      if (nth > 1) return serve(ISO, request, response);
      first = response;
      response.writeHead(200, { 'content-length': ISO.length });
      response.write(ISO.subarray(0, HALF));
    });
    const warnings: string[] = [];
    // Dropped once the client holds the first half, so the resume offset does not depend on timing.
    const onProgress = (p: IsoProgress) => {
      if (p.received === HALF && rangesOf(url).length === 1) first?.socket?.destroy();
    };
    await ensureIso(isoAt(url), { cacheDir, network: FAST, progressIntervalMs: 0, onProgress, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(rangesOf(url), [undefined, `bytes=${HALF}-`]);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] as string, new RegExp(`^${url}: .+; retry 1 of 1, resuming from byte ${HALF}$`));
    assertCachedIntact(isoAt(url), cacheDir);
    assert.deepEqual(await waitUntilClean(host, scope), []);
  });

  it('wrong bytes after a resume are rejected, said, and the file is fetched again from byte 0', async () => {
    const { cacheDir, scope, host } = faultCase();
    const wrong = Buffer.concat([ISO.subarray(0, HALF), randomBytes(HALF)]);
    let first: ServerResponse | undefined;
    // First request cut at the half; the resume gets wrong bytes; a request from byte 0 the right file.
    const url = route('/wrong-resume/ubuntu.iso', (request, response, nth) => {
      if (nth === 1) {
        first = response;
        response.writeHead(200, { 'content-length': ISO.length });
        response.write(ISO.subarray(0, HALF));
        return;
      }
      serve(request.headers.range ? wrong : ISO, request, response);
    });
    const warnings: string[] = [];
    const onProgress = (p: IsoProgress) => {
      if (p.received === HALF && rangesOf(url).length === 1) first?.socket?.destroy();
    };
    await ensureIso(isoAt(url), { cacheDir, network: FAST, progressIntervalMs: 0, onProgress, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(rangesOf(url), [undefined, `bytes=${HALF}-`, undefined]);
    assert.equal(warnings.length, 2, warnings.join('\n'));
    assert.match(warnings[1] as string, new RegExp(`^${url}: the download resumed at byte ${HALF} does not match sha256:${ISO_SHA256} .*removed, downloading it again from byte 0$`));
    assertCachedIntact(isoAt(url), cacheDir);
    assert.deepEqual(await waitUntilClean(host, scope), []);
  });
});

describe('ISO cache faults', () => {
  it('a corrupted .part left in the cache is resumed, found wrong, restarted from byte 0 and never used unverified', async () => {
    const { cacheDir, scope, host } = faultCase();
    const url = route('/corrupt-part/ubuntu.iso', (request, response) => serve(ISO, request, response));
    const finalPath = isoCachePath(isoAt(url), cacheDir);
    mkdirSync(path.dirname(finalPath), { recursive: true });
    writeFileSync(`${finalPath}.part`, randomBytes(HALF)); // a crash mid-write left garbage
    const warnings: string[] = [];
    await ensureIso(isoAt(url), { cacheDir, network: FAST, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(rangesOf(url), [`bytes=${HALF}-`, undefined]);
    assert.match(warnings.join('\n'), new RegExp(`resumed at byte ${HALF} does not match .*downloading it again from byte 0`));
    assertCachedIntact(isoAt(url), cacheDir);
    assert.deepEqual(await waitUntilClean(host, scope), []);
  });

  it('a mirror serving wrong bytes is rejected after the restart: nothing in the cache, and the next run succeeds', async () => {
    const { cacheDir, scope, host } = faultCase();
    const other = randomBytes(ISO.length);
    const url = route('/always-wrong/ubuntu.iso', (request, response) => serve(other, request, response));
    const finalPath = isoCachePath(isoAt(url), cacheDir);
    mkdirSync(path.dirname(finalPath), { recursive: true });
    writeFileSync(`${finalPath}.part`, ISO.subarray(0, HALF));
    await assert.rejects(ensureIso(isoAt(url), { cacheDir, network: FAST }), (error: unknown) => {
      assert.ok(error instanceof IsoChecksumMismatchError);
      assert.match(error.message, /checksum mismatch .*download was deleted/s);
      return true;
    });
    assert.deepEqual(snapshotFolder(cacheDir), { iso: 'dir 755' }, 'no .part, ISO, sidecar, lock or entry folder');

    route('/always-wrong/ubuntu.iso', (request, response) => serve(ISO, request, response));
    await ensureIso(isoAt(url), { cacheDir, network: FAST });
    assertCachedIntact(isoAt(url), cacheDir);
    assert.deepEqual(await waitUntilClean(host, scope), []);
  });

  it('a lock left by a process that is gone is taken over, and said', async () => {
    const { cacheDir, scope, host } = faultCase();
    const url = route('/stale-lock/ubuntu.iso', (request, response) => serve(ISO, request, response));
    const finalPath = isoCachePath(isoAt(url), cacheDir);
    mkdirSync(path.dirname(finalPath), { recursive: true });
    const gone = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim(); // a pid that has exited
    const lockPath = `${finalPath}.lock`;
    writeFileSync(lockPath, `${JSON.stringify({ pid: Number(gone), host: hostname(), since: '2026-01-01T00:00:00Z' })}\n`);
    const warnings: string[] = [];
    await ensureIso(isoAt(url), { cacheDir, network: FAST, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(warnings, [`took over ${lockPath}: process ${gone} on ${hostname()}, which held it, is gone`]);
    assertCachedIntact(isoAt(url), cacheDir);
    assert.ok(!existsSync(lockPath));
    assert.deepEqual(await waitUntilClean(host, scope), []);
  });

  it('a lock that names no owner and is older than 10 s is taken over, and said', async () => {
    const { cacheDir, scope, host } = faultCase();
    const url = route('/ownerless-lock/ubuntu.iso', (request, response) => serve(ISO, request, response));
    const finalPath = isoCachePath(isoAt(url), cacheDir);
    mkdirSync(path.dirname(finalPath), { recursive: true });
    const lockPath = `${finalPath}.lock`;
    writeFileSync(lockPath, ''); // a crash between creating the lock and writing its owner
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath, old, old);
    const warnings: string[] = [];
    await ensureIso(isoAt(url), { cacheDir, network: FAST, onWarning: (m) => warnings.push(m) });
    assert.deepEqual(warnings, [`took over ${lockPath}: it names no owner and is older than 10 s`]);
    assertCachedIntact(isoAt(url), cacheDir);
    assert.deepEqual(await waitUntilClean(host, scope), []);
  });
});

describe('ISO cache faults in a build (stand-in packer)', () => {
  it('a stale lock on the ISO is taken over and that is said in the build log', async () => {
    const { root, env, isoSha256, build } = buildSandbox('boxsmith-fault-iso-build-');
    const scope: LeftoverScope = { folders: [root], libvirt: false };
    const host = snapshotHost(scope);
    const lockPath = `${isoCachePath({ file: 'standin.iso', checksum: `sha256:${isoSha256}` }, env.BOXSMITH_CACHE)}.lock`;
    // A cache folder of an earlier boxsmith run (its marker), whose lock holder died.
    claimFolder({ dir: env.BOXSMITH_CACHE, kind: 'cache', namedBy: 'BOXSMITH_CACHE=' });
    mkdirSync(path.dirname(lockPath), { recursive: true });
    const gone = Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim());
    writeFileSync(lockPath, `${JSON.stringify({ pid: gone, host: hostname(), since: '2026-01-01T00:00:00Z' })}\n`);
    const result = build('1.0.0');
    assert.equal(result.status, 0, result.stdout + result.stderr);
    const [runId] = runIdsIn(env.BOXSMITH_LOGS);
    const log = readFileSync(path.join(env.BOXSMITH_LOGS, runId!, 'standin-qemu', 'inputs.log'), 'utf8');
    assert.match(log, new RegExp(`\\[boxsmith\\] took over ${lockPath.replace(/[.]/g, '\\.')}: process ${gone} on .*, which held it, is gone`));
    assert.ok(!existsSync(lockPath));
    assert.deepEqual(await waitUntilClean(host, { ...scope, runIds: [runId!] }), []);
  });
});
