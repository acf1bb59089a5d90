// Docker's static .tgz as a build input, served by a local HTTP server standing in for
// download.docker.com with a stand-in .tgz: the pinned file lands in the input cache's docker/
// folder and is taken from there next time; a file that is not the pin is refused and not kept;
// fetchSha256 (what `checksums` compares a pin with) hashes what a URL serves and names the URL
// when it cannot; the nightly planner skips a box whose .tgz this host cannot get.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadDefinition } from '../../src/definitions/load.ts';
import { dockerStaticUnavailable, ensureDockerStatic, fetchSha256 } from '../../src/inputs/docker-static.ts';
import { planNight } from '../../src/nightly/plan.ts';
import { standinDockerTgz } from '../docker-standin.ts';
import { tempDir } from '../helpers.ts';

const FILE = 'docker-18.06.3-ce.tgz';

describe('Docker static .tgz through the input cache (stand-in download server)', () => {
  const standin = standinDockerTgz();
  let requests = 0;
  const server = createServer((request, response) => {
    requests++;
    if (request.url === `/linux/static/stable/x86_64/${FILE}`) response.end(readFileSync(standin.file));
    else {
      response.statusCode = 404;
      response.end();
    }
  });
  let base = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const spec = (sha256: string) => ({ version: '18.06.3-ce', url: `${base}/linux/static/stable/x86_64/${FILE}`, sha256 });

  it('the pinned file is downloaded into <cache>/docker/sha256-<pin>/, and the next build takes it from there', async () => {
    const cacheDir = tempDir();
    const first = await ensureDockerStatic(spec(standin.sha256), { cacheDir });
    assert.equal(first.source, 'download');
    assert.equal(first.path, path.join(cacheDir, 'docker', `sha256-${standin.sha256}`, FILE));
    assert.deepEqual(readFileSync(first.path), readFileSync(standin.file));
    const served = requests;
    const second = await ensureDockerStatic(spec(standin.sha256), { cacheDir });
    assert.equal(second.source, 'cache');
    assert.equal(requests, served, 'no request for a cached file');
  });

  it('a file that is not the pin is refused, naming both checksums, and nothing is kept', async () => {
    const cacheDir = tempDir();
    const wrong = '0'.repeat(64);
    await assert.rejects(ensureDockerStatic(spec(wrong), { cacheDir }), (error: Error) => {
      assert.match(error.message, new RegExp(`checksum mismatch for ${FILE} downloaded from \\S+: expected sha256:${wrong}, got sha256:${standin.sha256}`));
      return true;
    });
    assert.equal(existsSync(path.join(cacheDir, 'docker')) ? readdirSync(path.join(cacheDir, 'docker')).length : 0, 0);
  });

  it('an unreachable server: the error says where to put the .tgz by hand', async () => {
    const cacheDir = tempDir();
    const unreachable = { ...spec(standin.sha256), url: `http://127.0.0.1:9/linux/static/stable/x86_64/${FILE}` };
    await assert.rejects(ensureDockerStatic(unreachable, { cacheDir, network: { retries: 0 } }), (error: Error) => {
      assert.match(error.message, new RegExp(`could not download ${FILE} from any of its URLs`));
      assert.match(error.message, /copy the Docker static \.tgz into the cache/);
      assert.match(error.message, new RegExp(`docker/sha256-${standin.sha256}/${FILE}`));
      return true;
    });
  });

  it('fetchSha256: the sha256 of what the URL serves; an unreachable URL is named', async () => {
    assert.equal(await fetchSha256(spec('').url), standin.sha256);
    await assert.rejects(fetchSha256('http://127.0.0.1:9/docker.tgz', { network: { retries: 0 } }), /^Error: could not download http:\/\/127\.0\.0\.1:9\/docker\.tgz: connection refused \(ECONNREFUSED\)$/);
    await assert.rejects(fetchSha256(`${base}/missing.tgz`, { network: { retries: 0 } }), /could not download \S+\/missing\.tgz: HTTP 404 Not Found/);
  });
});

describe('the nightly planner and a static Docker .tgz this host cannot get', () => {
  it('dockerStaticUnavailable: not cached and no answer at its URL, in one line saying where to put it; cached: available', async () => {
    const cacheDir = tempDir();
    const spec = { version: '18.06.3-ce', url: `http://127.0.0.1:9/linux/static/stable/x86_64/${FILE}`, sha256: 'a'.repeat(64) };
    const reason = await dockerStaticUnavailable(spec, { cacheDir, network: { retries: 0 } });
    const cached = path.join(cacheDir, 'docker', `sha256-${'a'.repeat(64)}`, FILE);
    assert.equal(
      reason,
      `its Docker static .tgz ${FILE} is not in the input cache and no URL serves it (${spec.url}: connection refused (ECONNREFUSED)); to supply it by hand, copy it to ${cached}`,
    );
    mkdirSync(path.dirname(cached), { recursive: true });
    writeFileSync(cached, 'verified by the build that uses it\n');
    assert.equal(await dockerStaticUnavailable(spec, { cacheDir }), undefined);
  });

  it('ubuntu-12.04\'s cells are skipped with that reason, before any input is read', async () => {
    const loaded = loadDefinition('ubuntu-12.04');
    const asked: string[] = [];
    const cells = await planNight({
      boxes: [loaded],
      cells: [],
      force: false,
      boxesDir: tempDir(),
      packer: { version: '1.6.6', modern: false },
      untestedIsGood: true,
      forRunners: false,
      checkIso: async () => undefined,
      checkDockerStatic: async (spec) => {
        asked.push(spec.url);
        return `its Docker static .tgz is not here (stand-in reason)`;
      },
      readArchive: async () => assert.fail('no input is read for a cell that cannot build'),
    });
    assert.deepEqual(asked, [loaded.definition.docker.static!.url], 'asked once for the box');
    // The providers whose hypervisor this host has (QEMU at least, which the set-up installs).
    const onThisHost = cells.filter((c) => !/is not installed on this host/.test(c.reason ?? ''));
    assert.ok(onThisHost.length > 0);
    for (const cell of onThisHost) assert.deepEqual([cell.decision, cell.reason], ['skipped', 'its Docker static .tgz is not here (stand-in reason)'], cell.provider);
  });
});
