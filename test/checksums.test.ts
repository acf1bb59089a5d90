// `boxsmith checksums`: pinned ISO checksums checked against the release's SHA256SUMS, served here
// by a local server standing in for the Ubuntu mirror, signed (SHA256SUMS.gpg) by a key made for
// the test, whose keyring the definitions name; gpgv is the real one. A static Docker's pin against
// a stand-in .tgz that a second local server, standing in for download.docker.com, serves.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { standinDockerTgz } from './docker-standin.ts';
import { CLI, REPO_ROOT, run, tempDir } from './helpers.ts';

const PINNED = 'b17d7c1e9d0321ad5810ba77b69aef43f0f29a5422b08120e6ee0576c4527c0e';
const NEWER = 'a'.repeat(64);

/** Runs the CLI asynchronously (the stand-in server lives in this process). */
function boxsmithAsync(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stdout += chunk));
    child.on('exit', (status) => resolve({ status, stdout }));
  });
}

const home = tempDir();
const keyring = path.join(tempDir(), 'release-keyring.gpg');
function gpg(args: string[], input?: string): Buffer {
  const result = spawnSync('gpg', ['--batch', '--homedir', home, ...args], { input, maxBuffer: 1 << 20 });
  assert.equal(result.status, 0, String(result.stderr));
  return result.stdout;
}
const sumsFor = (sha256: string) => `${sha256} *ubuntu-14.04.6-server-amd64.iso\n${'0'.repeat(64)} *ubuntu-14.04.6-desktop-amd64.iso\n`;
const sign = (text: string) => gpg(['--detach-sign', '--output', '-'], text);

describe('boxsmith checksums against a local stand-in for the release server', () => {
  let published = PINNED;
  /** What the stand-in serves as SHA256SUMS.gpg: a signature of the SUMS, of other text, or none. */
  let signature: 'valid' | 'tampered' | 'missing' = 'valid';
  const server = createServer((request, response) => {
    if (request.url === '/14.04/SHA256SUMS') {
      response.end(sumsFor(published));
    } else if (request.url === '/14.04/SHA256SUMS.gpg' && signature !== 'missing') {
      response.end(sign(signature === 'valid' ? sumsFor(published) : sumsFor(PINNED)));
    } else {
      response.statusCode = 404;
      response.end();
    }
  });
  const definitions = path.join(tempDir(), 'definitions');
  before(async () => {
    run('chmod', ['0700', home]);
    gpg(['--passphrase', '', '--quick-gen-key', 'release <cdimage@example.org>', 'ed25519', 'sign', 'never']);
    writeFileSync(keyring, gpg(['--export']));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    cpSync(path.join(REPO_ROOT, 'definitions'), definitions, { recursive: true });
    const base = path.join(definitions, 'bases', 'ubuntu.yaml');
    writeFileSync(base, readFileSync(base, 'utf8').replace('/usr/share/keyrings/ubuntu-archive-keyring.gpg', keyring));
    const file = path.join(definitions, 'ubuntu-14.04.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('http://releases.ubuntu.com/14.04/SHA256SUMS', `http://127.0.0.1:${port}/14.04/SHA256SUMS`));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a pin that matches the published checksum: exit 0', async () => {
    published = PINNED;
    const result = await boxsmithAsync(['checksums', 'ubuntu-14.04'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(result.status, 0, result.stdout);
    assert.match(result.stdout, /ubuntu-14\.04: ubuntu-14\.04\.6-server-amd64\.iso sha256:b17d7c1e\S+ matches/);
  });

  it('a pin that differs: exit 1 naming both; --refresh rewrites it in the box file, comments kept', async () => {
    published = NEWER;
    const file = path.join(definitions, 'ubuntu-14.04.yaml');
    const differs = await boxsmithAsync(['checksums', 'ubuntu-14.04'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(differs.status, 1);
    assert.match(differs.stdout, new RegExp(`pinned to sha256:${PINNED}, but \\S+ says sha256:${NEWER} \\(set in .*ubuntu-14\\.04\\.yaml; --refresh rewrites it\\)`));
    assert.match(readFileSync(file, 'utf8'), new RegExp(PINNED), 'unchanged without --refresh');

    const refreshed = await boxsmithAsync(['checksums', 'ubuntu-14.04', '--refresh'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(refreshed.status, 0, refreshed.stdout);
    const text = readFileSync(file, 'utf8');
    assert.match(text, new RegExp(`checksum: sha256:${NEWER}`));
    assert.match(text, /^# Ubuntu 14\.04 \(trusty\) amd64 server/m, 'comments kept');
    const again = await boxsmithAsync(['checksums', 'ubuntu-14.04'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(again.status, 0, again.stdout);
  });

  for (const [kind, message] of [
    ['tampered', /SHA256SUMS\.gpg does not verify \S+SHA256SUMS with /],
    ['missing', /no signature for \S+SHA256SUMS .*an unsigned checksum file is not trusted/],
  ] as const) {
    it(`a ${kind} signature: the checksum file is not trusted, nothing rewritten, exit 1`, async () => {
      const file = path.join(definitions, 'ubuntu-14.04.yaml');
      const before = readFileSync(file, 'utf8');
      published = 'b'.repeat(64);
      signature = kind;
      try {
        const result = await boxsmithAsync(['checksums', 'ubuntu-14.04', '--refresh'], { BOXSMITH_DEFINITIONS: definitions });
        assert.equal(result.status, 1, result.stdout);
        assert.match(result.stdout, message);
        assert.equal(readFileSync(file, 'utf8'), before);
      } finally {
        signature = 'valid';
      }
    });
  }

  it('an unreachable checksum file is reported, exit 1', async () => {
    const file = path.join(definitions, 'ubuntu-12.04.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('http://old-releases.ubuntu.com/releases/12.04/SHA256SUMS', 'http://127.0.0.1:9/SHA256SUMS'));
    const result = await boxsmithAsync(['checksums', 'ubuntu-12.04'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(result.status, 1);
    assert.match(result.stdout, /ubuntu-12\.04: could not check ubuntu-12\.04\.5-server-amd64\.iso: /);
  });
});

describe('boxsmith checksums: a static Docker\'s pin against the file a local stand-in for download.docker.com serves', () => {
  const standin = standinDockerTgz();
  const server = createServer((request, response) => {
    if (request.url === '/linux/static/stable/x86_64/docker-18.06.3-ce.tgz') response.end(readFileSync(standin.file));
    else {
      response.statusCode = 404;
      response.end();
    }
  });
  const definitions = path.join(tempDir(), 'definitions');
  const file = path.join(definitions, 'debian-12-docker-static.yaml');
  /** A box with no ISO, so the Docker pin is the only one checked. */
  const writeBox = (url: string, sha256: string) =>
    writeFileSync(
      file,
      '# debian-12 with a static Docker (test definition)\nextends: debian-12\nbox_name: debian-12-docker-static-amd64\n' +
        `docker:\n  source: static\n  packages: [iptables]\n  static:\n    version: 18.06.3-ce\n    url: ${url}\n    # the pin\n    sha256: ${sha256}\n`,
    );
  let url = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/linux/static/stable/x86_64/docker-18.06.3-ce.tgz`;
    cpSync(path.join(REPO_ROOT, 'definitions'), definitions, { recursive: true });
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a pin that matches the served file: exit 0', async () => {
    writeBox(url, standin.sha256);
    const result = await boxsmithAsync(['checksums', 'debian-12-docker-static'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(result.status, 0, result.stdout);
    assert.match(result.stdout, new RegExp(`debian-12-docker-static: docker-18\\.06\\.3-ce\\.tgz sha256:${standin.sha256} matches ${url}`));
  });

  it('a pin that differs: exit 1 naming both, unchanged; --refresh rewrites it, comments kept', async () => {
    writeBox(url, NEWER);
    const before = readFileSync(file, 'utf8');
    const differs = await boxsmithAsync(['checksums', 'debian-12-docker-static'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(differs.status, 1);
    assert.match(differs.stdout, new RegExp(`pinned to sha256:${NEWER}, but the file at ${url} is sha256:${standin.sha256} \\(set in .*debian-12-docker-static\\.yaml; --refresh rewrites it\\)`));
    assert.equal(readFileSync(file, 'utf8'), before);

    const refreshed = await boxsmithAsync(['checksums', 'debian-12-docker-static', '--refresh'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(refreshed.status, 0, refreshed.stdout);
    const text = readFileSync(file, 'utf8');
    assert.match(text, new RegExp(`^    sha256: ${standin.sha256}$`, 'm'));
    assert.match(text, /^    # the pin$/m, 'comments kept');
  });

  it('offline (nothing answers at the URL): it says it could not check, naming the URL, exit 1, nothing rewritten', async () => {
    const offline = 'http://127.0.0.1:9/linux/static/stable/x86_64/docker-18.06.3-ce.tgz';
    writeBox(offline, NEWER);
    const before = readFileSync(file, 'utf8');
    const result = await boxsmithAsync(['checksums', 'debian-12-docker-static', '--refresh'], { BOXSMITH_DEFINITIONS: definitions });
    assert.equal(result.status, 1);
    assert.match(result.stdout, new RegExp(`debian-12-docker-static: could not check docker-18\\.06\\.3-ce\\.tgz: could not download ${offline}: connection refused`));
    assert.equal(readFileSync(file, 'utf8'), before);
  });
});
