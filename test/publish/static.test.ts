// Publishing into a static catalog tree: what is published (smoke test passed, bytes as recorded),
// merging into the catalog, retention, atomic writes, dry runs.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { PublishError } from '../../src/publish/errors.ts';
import { publishBox, type PublishOptions } from '../../src/publish/publish.ts';
import type { Catalog } from '../../src/publish/catalog.ts';
import type { PublishReport } from '../../src/publish/report.ts';
import { boxFiles, writeChecksumFile } from '../../src/store/box-store.ts';
import { tempDir } from '../helpers.ts';
import { BOX, BOX_NAME, NAME, ORG, writeBuild } from './helpers.ts';

const BASE_URL = 'https://boxes.example.org';

function setup(): { boxesDir: string; root: string; lines: string[]; publish: (extra?: Partial<PublishOptions>) => Promise<PublishReport> } {
  const boxesDir = tempDir('boxsmith-publish-boxes-');
  const root = path.join(tempDir('boxsmith-publish-tree-'), 'tree');
  const lines: string[] = [];
  const publish = (extra: Partial<PublishOptions> = {}) =>
    publishBox({ box: BOX, target: { kind: 'static', root, baseUrl: BASE_URL }, boxesDir, env: {}, log: (line) => lines.push(line), ...extra });
  return { boxesDir, root, lines, publish };
}

function readCatalog(root: string): Catalog {
  return JSON.parse(readFileSync(path.join(root, ORG, BOX_NAME), 'utf8')) as Catalog;
}

function boxPath(root: string, version: string, provider = 'libvirt'): string {
  return path.join(root, ORG, 'boxes', BOX_NAME, 'versions', version, 'providers', provider, 'amd64.box');
}

/** Every file below a folder, relative, hidden ones included. */
function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe('static catalog tree', () => {
  it('publishes a tested box: the box, its checksum and the catalog at both paths, atomically written', async () => {
    const { boxesDir, root, publish } = setup();
    const built = writeBuild(boxesDir, '1.0.0');
    const report = await publish();
    assert.ok(report.ok && report.released);
    assert.deepEqual(allFiles(root), [
      '.boxsmith-folder',
      `${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.box`,
      `${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.box.sha256`,
      `${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.record.json`,
      `${ORG}/${BOX_NAME}`,
      `${ORG}/${BOX_NAME}.json`,
    ], 'no temporary or lock file is left');
    // The build record beside the box: what a nightly on a fresh runner compares its inputs with.
    assert.deepEqual(JSON.parse(readFileSync(path.join(root, `${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.record.json`), 'utf8')), JSON.parse(readFileSync(path.join(built.dir, 'libvirt.json'), 'utf8')));
    assert.deepEqual(readFileSync(boxPath(root, '1.0.0')), readFileSync(built.file));
    assert.equal(readFileSync(`${boxPath(root, '1.0.0')}.sha256`, 'utf8'), `${built.sha256}  amd64.box\n`);
    assert.deepEqual(readCatalog(root), {
      name: NAME,
      description: 'Docker-friendly Ubuntu 14.04 (trusty) amd64 base box',
      versions: [
        {
          version: '1.0.0',
          providers: [
            {
              name: 'libvirt',
              url: `${BASE_URL}/${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.box`,
              checksum_type: 'sha256',
              checksum: built.sha256,
              architecture: 'amd64',
              default_architecture: true,
            },
          ],
        },
      ],
    });
    assert.equal(readFileSync(path.join(root, ORG, `${BOX_NAME}.json`), 'utf8'), readFileSync(path.join(root, ORG, BOX_NAME), 'utf8'));
  });

  it('without base-url the catalog points at the boxes by file:// URL', async () => {
    const { boxesDir, root, publish } = setup();
    writeBuild(boxesDir, '1.0.0');
    await publish({ target: { kind: 'static', root } });
    assert.equal(readCatalog(root).versions[0]!.providers[0]!.url, pathToFileURL(boxPath(root, '1.0.0')).href);
  });

  it('publishing twice with two versions keeps both; providers published separately are merged', async () => {
    const { boxesDir, root, publish } = setup();
    writeBuild(boxesDir, '1.0.0');
    await publish({ version: '1.0.0' });
    writeBuild(boxesDir, '1.1.0');
    await publish({ version: '1.1.0' });
    // Another provider of 1.1.0, built elsewhere later: added beside libvirt.
    writeBuild(boxesDir, '1.1.0', { provider: 'virtualbox' });
    const report = await publish({ version: '1.1.0' });
    assert.deepEqual(Object.fromEntries(report.outcomes.map((o) => [o.provider, o.status])), { libvirt: 'unchanged', virtualbox: 'published' });
    const catalog = readCatalog(root);
    assert.deepEqual(catalog.versions.map((v) => v.version), ['1.1.0', '1.0.0']);
    assert.deepEqual(catalog.versions[0]!.providers.map((p) => p.name), ['libvirt', 'virtualbox']);
    assert.ok(existsSync(boxPath(root, '1.0.0')) && existsSync(boxPath(root, '1.1.0')) && existsSync(boxPath(root, '1.1.0', 'virtualbox')));
  });

  it('moves the URLs of its own boxes to a new base URL, and leaves entries hosted elsewhere alone', async () => {
    const { boxesDir, root, lines, publish } = setup();
    writeBuild(boxesDir, '1.0.0');
    await publish({ version: '1.0.0', target: { kind: 'static', root, baseUrl: 'http://127.0.0.1:8099' } });
    const catalog = readCatalog(root);
    const external = { name: 'hyperv', url: 'https://mirror.example.net/hyperv.box', checksum_type: 'sha256', checksum: 'f'.repeat(64) };
    catalog.versions[0]!.providers.push(external);
    writeFileSync(path.join(root, ORG, BOX_NAME), JSON.stringify(catalog));
    writeBuild(boxesDir, '1.1.0');
    await publish({ version: '1.1.0' });
    const providers = readCatalog(root).versions.flatMap((v) => v.providers.map((p) => `${v.version} ${p.url}`));
    assert.deepEqual(providers, [
      `1.1.0 ${BASE_URL}/${ORG}/boxes/${BOX_NAME}/versions/1.1.0/providers/libvirt/amd64.box`,
      `1.0.0 ${BASE_URL}/${ORG}/boxes/${BOX_NAME}/versions/1.0.0/providers/libvirt/amd64.box`,
      `1.0.0 ${external.url}`,
    ]);
    assert.ok(lines.includes(`1.0.0 libvirt: URL moved to the base URL ${BASE_URL}`));
  });

  it('keeps the newest N versions and deletes the files of the one it drops', async () => {
    const { boxesDir, root, publish } = setup();
    for (const version of ['1.0.0', '1.1.0', '2.0.0']) {
      writeBuild(boxesDir, version);
      const report = await publish({ version, keep: 2 });
      assert.deepEqual(report.droppedVersions, version === '2.0.0' ? ['1.0.0'] : []);
    }
    assert.deepEqual(readCatalog(root).versions.map((v) => v.version), ['2.0.0', '1.1.0']);
    assert.ok(!existsSync(path.join(root, ORG, 'boxes', BOX_NAME, 'versions', '1.0.0')), 'the dropped version is deleted');
    assert.ok(existsSync(boxPath(root, '1.1.0')) && existsSync(boxPath(root, '2.0.0')));

    // An older version than the kept ones would be dropped at once: refused, nothing changes.
    writeBuild(boxesDir, '0.9.0');
    const before = readFileSync(path.join(root, ORG, BOX_NAME), 'utf8');
    await assert.rejects(publish({ version: '0.9.0', keep: 2 }), /0\.9\.0 is older than the 2 newest versions .* raise --keep/);
    assert.equal(readFileSync(path.join(root, ORG, BOX_NAME), 'utf8'), before);
    assert.ok(!existsSync(boxPath(root, '0.9.0')));
  });

  it('retention deletes nothing outside the tree: a hand-edited version that is no folder name only leaves the catalog', async () => {
    const { boxesDir, root, lines, publish } = setup();
    const victim = path.join(path.dirname(root), 'victim');
    mkdirSync(victim);
    writeFileSync(path.join(victim, 'precious.txt'), 'not the tree\'s\n');
    writeBuild(boxesDir, '1.0.0');
    await publish({ version: '1.0.0' });
    const catalog = readCatalog(root);
    // From <root>/phusion/boxes/<box>/versions/ six levels up is the tree's parent.
    const escaping = `0/${'../'.repeat(6)}victim`;
    catalog.versions.push({ version: escaping, providers: [] });
    writeFileSync(path.join(root, ORG, BOX_NAME), JSON.stringify(catalog));
    writeBuild(boxesDir, '1.1.0');
    const report = await publish({ version: '1.1.0', keep: 2 });
    assert.deepEqual(report.droppedVersions, [escaping]);
    assert.deepEqual(readCatalog(root).versions.map((v) => v.version), ['1.1.0', '1.0.0']);
    assert.equal(readFileSync(path.join(victim, 'precious.txt'), 'utf8'), 'not the tree\'s\n');
    assert.ok(lines.some((line) => line.includes('nothing was deleted')));
  });

  it('defaults to the newest built version (numerically, not by name)', async () => {
    const { boxesDir, root, publish } = setup();
    writeBuild(boxesDir, '20261128.90000.0');
    writeBuild(boxesDir, '20261128.163000.0');
    const report = await publish();
    assert.equal(report.version, '20261128.163000.0');
    assert.deepEqual(readCatalog(root).versions.map((v) => v.version), ['20261128.163000.0']);
  });

  it('publishes only boxes whose smoke test passed; --allow-untested overrides with a warning per box', async () => {
    const { boxesDir, root, lines, publish } = setup();
    writeBuild(boxesDir, '1.0.0', { provider: 'libvirt', smoke: 'passed' });
    writeBuild(boxesDir, '1.0.0', { provider: 'virtualbox', smoke: 'failed' });
    writeBuild(boxesDir, '1.0.0', { provider: 'vmware_desktop', smoke: 'missing' });
    const report = await publish();
    assert.deepEqual(readCatalog(root).versions[0]!.providers.map((p) => p.name), ['libvirt']);
    const skipped = Object.fromEntries(report.outcomes.filter((o) => o.status === 'skipped').map((o) => [o.provider, o.detail]));
    assert.match(skipped.virtualbox!, /smoke test failed: docker-run/);
    assert.match(skipped.vmware_desktop!, /not smoke-tested \(no vmware_desktop\.smoke\.json\)/);
    assert.deepEqual(report.warnings, []);

    const untested = await publish({ allowUntested: true });
    assert.deepEqual(readCatalog(root).versions[0]!.providers.map((p) => p.name), ['libvirt', 'virtualbox', 'vmware_desktop']);
    assert.equal(untested.warnings.length, 2);
    for (const provider of ['virtualbox', 'vmware_desktop']) {
      assert.ok(lines.some((line) => line.startsWith(`WARNING: publishing ${NAME} 1.0.0 ${provider} although it did not pass its smoke test`)), `a warning line for ${provider}`);
    }
  });

  it('publishes nothing when no box passed its smoke test', async () => {
    const { boxesDir, root, publish } = setup();
    writeBuild(boxesDir, '1.0.0', { smoke: 'failed' });
    await assert.rejects(publish(), (error: unknown) => error instanceof PublishError && /nothing to publish .* libvirt: smoke test failed/.test(error.message));
    assert.ok(!existsSync(root));
  });

  it('refuses a box that changed after its build, and leaves the tree as it was', async () => {
    const { boxesDir, root, publish } = setup();
    writeBuild(boxesDir, '1.0.0');
    await publish();
    const built = writeBuild(boxesDir, '1.1.0');
    const bytes = readFileSync(built.file);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff; // same size, other bytes
    writeFileSync(built.file, bytes);
    const before = allFiles(root);
    await assert.rejects(publish({ version: '1.1.0' }), /has sha256 [0-9a-f]{64} but its build record says .*rebuild it/);
    assert.deepEqual(allFiles(root), before);
    assert.deepEqual(readCatalog(root).versions.map((v) => v.version), ['1.0.0']);
  });

  it('refuses a box whose checksum file disagrees with its record, and a version that was not built', async () => {
    const { boxesDir, publish } = setup();
    const built = writeBuild(boxesDir, '1.0.0');
    await assert.rejects(publish({ version: '3.0.0' }), /has no built version 3\.0\.0 .*built versions: 1\.0\.0/);
    writeChecksumFile(built.file, '0'.repeat(64));
    await assert.rejects(publish(), /libvirt\.box\.sha256 \(sha256:0{64}\) disagrees with the build record/);
  });

  it('skips a box without a build record: its build did not finish', async () => {
    const { boxesDir, publish } = setup();
    writeBuild(boxesDir, '1.0.0', { provider: 'libvirt' });
    const unfinished = writeBuild(boxesDir, '1.0.0', { provider: 'virtualbox' });
    rmSync(boxFiles(unfinished.dir, 'virtualbox').record);
    const report = await publish();
    assert.match(report.outcomes.find((o) => o.provider === 'virtualbox')!.detail, /no build record virtualbox\.json \(the build did not finish\)/);
  });

  it('refuses to merge into a catalog that is not one, rather than overwrite it', async () => {
    const { boxesDir, root, publish } = setup();
    writeBuild(boxesDir, '1.0.0');
    mkdirSync(path.join(root, ORG), { recursive: true });
    writeFileSync(path.join(root, ORG, BOX_NAME), '{"name": "phusion/ubuntu-14.04-amd64", "versions": [{"version": "0.1"}]}');
    await assert.rejects(publish(), /is not a Vagrant box catalog: versions\[0\] \(0\.1\) has no "providers" list/);
  });

  it('a dry run says what it would copy, write and delete, and changes nothing', async () => {
    const { boxesDir, root, lines, publish } = setup();
    writeBuild(boxesDir, '1.0.0');
    await publish({ keep: 1 });
    const before = allFiles(root);
    const catalogBefore = statSync(path.join(root, ORG, BOX_NAME)).mtimeMs;
    writeBuild(boxesDir, '2.0.0');
    const report = await publish({ version: '2.0.0', keep: 1, dryRun: true });
    assert.equal(report.dryRun, true);
    assert.equal(report.released, false);
    assert.deepEqual(report.droppedVersions, ['1.0.0']);
    assert.equal(report.outcomes[0]!.status, 'planned');
    assert.deepEqual(allFiles(root), before);
    assert.equal(statSync(path.join(root, ORG, BOX_NAME)).mtimeMs, catalogBefore);
    assert.ok(lines.some((line) => /\[dry run\] would copy .*2\.0\.0\/libvirt\.box to .*versions\/2\.0\.0\/providers\/libvirt\/amd64\.box/.test(line)));
    assert.ok(lines.some((line) => /\[dry run\] would write the catalog .* with versions 2\.0\.0$/.test(line)));
    assert.ok(lines.some((line) => /\[dry run\] would delete .*versions\/1\.0\.0$/.test(line)));
  });
});
