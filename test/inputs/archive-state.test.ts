// The archive state (InRelease date and digest of a definition's suites) against a local server on
// 127.0.0.1 standing in for the Debian archive; and the base image's cache key, which changes with it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { baseImageKey } from '../../src/build/base-image.ts';
import { loadDefinition } from '../../src/definitions/load.ts';
import type { Definition } from '../../src/definitions/schema.ts';
import { archiveState, archiveSuites, inReleaseDate } from '../../src/inputs/archive-state.ts';
import type { NetworkSettings } from '../../src/inputs/http.ts';
import { REPO_ROOT } from '../helpers.ts';

const FAST: NetworkSettings = { connectTimeoutMs: 5_000, responseTimeoutMs: 5_000, idleTimeoutMs: 5_000, retries: 0, maxRetryDelayMs: 20 };

/** An InRelease as the archive signs it (the signature is not checked: only its date and bytes count). */
function inRelease(suite: string, date: string): string {
  return [
    '-----BEGIN PGP SIGNED MESSAGE-----',
    'Hash: SHA512',
    '',
    'Origin: Debian',
    'Label: Debian',
    `Suite: ${suite}`,
    'Codename: bookworm',
    `Date: ${date}`,
    'Acquire-By-Hash: yes',
    'Architectures: all amd64 arm64',
    'Components: main contrib non-free-firmware non-free',
    '-----BEGIN PGP SIGNATURE-----',
    '',
    'iQIzBAEBCgAdFiEE...',
    '-----END PGP SIGNATURE-----',
    '',
  ].join('\n');
}

/** Path -> body the server answers with; any other path is a 404. */
const files = new Map<string, string>();
let server: Server;
let base: string;

before(async () => {
  server = createServer((request, response) => {
    const body = files.get(request.url ?? '');
    if (body === undefined) response.writeHead(404).end('not here');
    else response.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** debian-12 with its archive and security archive on the local server. */
function debian(): Definition {
  const { definition } = loadDefinition('debian-12');
  definition.base.debootstrap!.mirror = `${base}/debian/`;
  definition.base.debootstrap!.security_mirror = `${base}/debian-security`;
  return definition;
}

function serveBookworm(updatesDate = 'Sun, 29 Nov 2026 20:21:41 UTC'): void {
  files.clear();
  files.set('/debian/dists/bookworm/InRelease', inRelease('stable', 'Sat, 11 Jul 2026 10:16:37 UTC'));
  files.set('/debian/dists/bookworm-updates/InRelease', inRelease('stable-updates', updatesDate));
  files.set('/debian-security/dists/bookworm-security/InRelease', inRelease('stable-security', 'Mon, 30 Nov 2026 00:22:33 UTC'));
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('archive state', () => {
  it('reads the release, -updates and -security InRelease: each suite with its date (ISO 8601) and sha256', async () => {
    serveBookworm();
    const state = await archiveState(debian(), FAST);
    assert.deepEqual(state, [
      { suite: `${base}/debian/ bookworm`, date: '2026-07-11T10:16:37.000Z', sha256: sha256(files.get('/debian/dists/bookworm/InRelease')!) },
      { suite: `${base}/debian/ bookworm-updates`, date: '2026-11-29T20:21:41.000Z', sha256: sha256(files.get('/debian/dists/bookworm-updates/InRelease')!) },
      { suite: `${base}/debian-security bookworm-security`, date: '2026-11-30T00:22:33.000Z', sha256: sha256(files.get('/debian-security/dists/bookworm-security/InRelease')!) },
    ]);
  });

  it('a suite the archive does not have: one line naming its URL and the HTTP status', async () => {
    serveBookworm();
    files.delete('/debian-security/dists/bookworm-security/InRelease');
    await assert.rejects(archiveState(debian(), FAST), (error: Error) => {
      assert.equal(error.message, `cannot read the archive state from ${base}/debian-security/dists/bookworm-security/InRelease: HTTP 404 Not Found`);
      return true;
    });
  });

  it('an archive nobody answers for: one line naming the URL and the refused connection', async () => {
    const definition = debian();
    definition.base.debootstrap!.mirror = 'http://127.0.0.1:1/debian';
    serveBookworm();
    await assert.rejects(archiveState(definition, FAST), (error: Error) => {
      assert.match(error.message, /^cannot read the archive state from http:\/\/127\.0\.0\.1:1\/debian\/dists\/bookworm(-updates)?\/InRelease: .*ECONNREFUSED/);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
  });

  it('a page that is not an InRelease (no Date:): one line naming the URL', async () => {
    serveBookworm();
    files.set('/debian/dists/bookworm-updates/InRelease', '<html><body>Welcome to our captive portal</body></html>\n');
    await assert.rejects(archiveState(debian(), FAST), (error: Error) => {
      assert.equal(error.message, `${base}/debian/dists/bookworm-updates/InRelease is not an InRelease file: it has no Date: line`);
      return true;
    });
  });

  it('inReleaseDate: a Date: that is not a date is refused, a real one read as UTC', () => {
    assert.throws(() => inReleaseDate('Origin: Debian\nDate: someday soon\n'), /it has no Date: line/);
    assert.equal(inReleaseDate(inRelease('stable', 'Sat, 11 Jul 2026 10:16:37 UTC')), '2026-07-11T10:16:37.000Z');
  });

  it('an installer box: its preseed mirror, the codename, -updates and -security', () => {
    const { definition } = loadDefinition('ubuntu-14.04');
    assert.deepEqual(archiveSuites(definition), [
      { archive: 'http://archive.ubuntu.com/ubuntu', suite: 'trusty' },
      { archive: 'http://archive.ubuntu.com/ubuntu', suite: 'trusty-updates' },
      { archive: 'http://archive.ubuntu.com/ubuntu', suite: 'trusty-security' },
    ]);
  });
});

describe('the base image cache key', () => {
  it('changes when the archive does (a new -updates InRelease), and only then', async () => {
    const definition = debian();
    serveBookworm();
    const today = await archiveState(definition, FAST);
    assert.equal(baseImageKey('debian-12', definition, REPO_ROOT, today), baseImageKey('debian-12', definition, REPO_ROOT, await archiveState(definition, FAST)));
    serveBookworm('Wed, 02 Dec 2026 02:20:11 UTC');
    const tomorrow = await archiveState(definition, FAST);
    assert.notEqual(baseImageKey('debian-12', definition, REPO_ROOT, tomorrow), baseImageKey('debian-12', definition, REPO_ROOT, today));
  });
});
