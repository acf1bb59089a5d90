// The box store (src/store/): the layout of a version folder, build records and checksum files as
// read back (one clear line naming the file when wrong), and staging: the box put in place last,
// stale results of an earlier build removed, and a build that fails leaving the last good box as
// it was.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BoxStoreError, boxFiles, builtProviders, builtVersions, readChecksumFile, versionDirectory, writeChecksumFile } from '../../src/store/box-store.ts';
import { readBuildRecord, writeBuildRecord, type BuildRecord } from '../../src/store/build-record.ts';
import { createStaging, isStagingName, putInPlace, removeStaging, stagedFiles, type Staging } from '../../src/store/staging.ts';
import { run, tempDir } from '../helpers.ts';

const SHA = 'ab'.repeat(32);

function record(overrides: Partial<BuildRecord> = {}): BuildRecord {
  return {
    box: 'debian-12',
    name: 'phusion/debian-12-amd64',
    version: '1.0.0',
    provider: 'libvirt',
    file: 'libvirt.box',
    size: 3,
    sha256: SHA,
    git_revision: 'unknown',
    packer_version: '1.6.6',
    hypervisor_version: 'QEMU emulator version 7.2.0',
    base: { kind: 'iso', iso: 'debian.iso' },
    run_id: 'run-1',
    built_at: '2026-12-02T00:00:00.000Z',
    durations_s: { build: 1 },
    smoke_test: 'skipped',
    ...overrides,
  };
}

/** A build's files staged as the package and record steps leave them (the box's content is `content`). */
function stageBuild(versionDir: string, runId: string, content: string, extra: { smoke?: boolean } = {}): Staging {
  const staging = createStaging(versionDir, 'libvirt', runId);
  const staged = stagedFiles(staging).box;
  writeFileSync(staged, content);
  writeChecksumFile(staged, sha256(content));
  writeBuildRecord(stagedFiles(staging).record, record({ size: content.length, sha256: sha256(content), run_id: runId }));
  if (extra.smoke) {
    writeFileSync(stagedFiles(staging).smokeResult, '{"passed":true}\n');
    writeFileSync(stagedFiles(staging).smokeJunit, '<testsuite/>\n');
  }
  return staging;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Every file below `dir` with its content. */
function contents(dir: string): Record<string, string> {
  return Object.fromEntries(
    (readdirSync(dir, { recursive: true }) as string[]).filter((name) => statSync(path.join(dir, name)).isFile()).sort().map((name) => [name, readFileSync(path.join(dir, name), 'utf8')]),
  );
}

describe('the layout of boxes/', () => {
  it('names the files of a box in its version folder', () => {
    const dir = versionDirectory('/b', 'phusion', 'debian-12-amd64', '1.0.0');
    assert.equal(dir, '/b/phusion/debian-12-amd64/1.0.0');
    assert.deepEqual(boxFiles(dir, 'libvirt'), {
      box: `${dir}/libvirt.box`,
      checksum: `${dir}/libvirt.box.sha256`,
      record: `${dir}/libvirt.json`,
      packageManifest: `${dir}/libvirt.packages.tsv`,
      smokeResult: `${dir}/libvirt.smoke.json`,
      smokeJunit: `${dir}/libvirt.smoke.xml`,
      uploadJournal: `${dir}/libvirt.uploads.json`,
    });
  });

  it('a version whose box is still in a staging folder is not a built version', async () => {
    const boxes = tempDir('boxsmith-store-');
    const done = versionDirectory(boxes, 'phusion', 'b', '1.0.0');
    putInPlace(stageBuild(done, 'run-1', 'one'));
    const staging = stageBuild(versionDirectory(boxes, 'phusion', 'b', '2.0.0'), 'run-2', 'two');
    assert.ok(readdirSync(path.dirname(staging.dir)).some(isStagingName));
    assert.deepEqual(builtVersions(boxes, 'phusion', 'b'), ['1.0.0']);
    assert.deepEqual(builtProviders(done), ['libvirt']);
  });

  it('a checksum file as written is read back as sha256sum checks it; a missing or foreign one is one line naming it', () => {
    const dir = tempDir('boxsmith-store-');
    const box = boxFiles(dir, 'libvirt').box;
    writeFileSync(box, 'box');
    writeChecksumFile(box, sha256('box'));
    assert.equal(run('sha256sum', ['-c', 'libvirt.box.sha256'], { cwd: dir }).status, 0);
    assert.equal(readChecksumFile(box), sha256('box'));
    writeFileSync(boxFiles(dir, 'libvirt').checksum, `${SHA}  other.box\n`);
    assert.throws(() => readChecksumFile(box), (error: Error) => error instanceof BoxStoreError && /libvirt\.box is not listed in .*libvirt\.box\.sha256 \(it lists other\.box\)$/.test(error.message));
    rmSync(boxFiles(dir, 'libvirt').checksum);
    assert.throws(() => readChecksumFile(box), /libvirt\.box\.sha256 is missing: the build did not finish; rebuild the box$/);
  });
});

describe('build records', () => {
  const file = () => path.join(tempDir('boxsmith-record-'), 'libvirt.json');

  it('one written is read back as it was', () => {
    const written = file();
    writeBuildRecord(written, record({ accelerator: 'kvm', smoke_test: { passed: true, checks: 7 } }));
    assert.deepEqual(readBuildRecord(written, { name: 'phusion/debian-12-amd64', version: '1.0.0', provider: 'libvirt' }), record({ accelerator: 'kvm', smoke_test: { passed: true, checks: 7 } }));
  });

  for (const [what, content, message] of [
    ['not JSON', '{"box": ', /libvirt\.json is not a readable build record: /],
    ['not an object', '[]', /libvirt\.json is not a build record: the record must be object$/],
    ['a field missing', JSON.stringify({ ...record(), size: undefined }), /libvirt\.json is not a build record: size is missing$/],
    ['fields of the wrong kind', JSON.stringify({ ...record(), sha256: 'xyz', size: -1 }), /libvirt\.json is not a build record: size must be >= 1; sha256 must match pattern/],
    ['a smoke result of neither shape', JSON.stringify({ ...record(), smoke_test: 'passed' }), /libvirt\.json is not a build record: smoke_test must be \{"passed": true or false, "checks": a count\} or "skipped"$/],
  ] as const) {
    it(`${what}: one line naming the file`, () => {
      const written = file();
      writeFileSync(written, content);
      assert.throws(() => readBuildRecord(written), (error: Error) => {
        assert.ok(error instanceof BoxStoreError);
        assert.ok(error.message.startsWith(written), error.message);
        assert.doesNotMatch(error.message, /\n/);
        assert.match(error.message, message);
        return true;
      });
    });
  }

  it('compression_level and compressor: carried beside compression; a record from before them (none) is still read; a level that is not a whole number, or a compressor that is not a program name, is refused', () => {
    const written = file();
    writeBuildRecord(written, record({ compression: 'gzip', compression_level: 1, compressor: 'bgzip' }));
    assert.equal(readBuildRecord(written).compression_level, 1);
    assert.equal(readBuildRecord(written).compressor, 'bgzip');
    writeBuildRecord(written, record());
    assert.equal(readBuildRecord(written).compression_level, undefined);
    assert.equal(readBuildRecord(written).compressor, undefined);
    writeFileSync(written, JSON.stringify({ ...record(), compression: 'gzip', compression_level: 'fast' }));
    assert.throws(() => readBuildRecord(written), /libvirt\.json is not a build record: compression_level must be integer$/);
    writeFileSync(written, JSON.stringify({ ...record(), compression: 'gzip', compressor: '/usr/bin/pigz' }));
    assert.throws(() => readBuildRecord(written), /libvirt\.json is not a build record: compressor must match pattern/);
  });

  it('the record of another box, version or provider does not describe this box', () => {
    const written = file();
    writeBuildRecord(written, record());
    assert.throws(() => readBuildRecord(written, { name: 'phusion/debian-12-amd64', version: '2.0.0', provider: 'virtualbox' }), /libvirt\.json does not describe this box: version is "1\.0\.0", not 2\.0\.0; provider is "libvirt", not virtualbox$/);
  });
});

describe('staging and the put-in-place', () => {
  it('puts the sidecars in place first and the box last, removes stale results of an earlier build, keeps what is not the build\'s, and removes the staging folder', async () => {
    const boxes = tempDir('boxsmith-store-');
    const dir = versionDirectory(boxes, 'phusion', 'b', '1.0.0');
    putInPlace(stageBuild(dir, 'run-1', 'first', { smoke: true }));
    writeFileSync(path.join(dir, 'virtualbox.box'), 'another provider');
    writeFileSync(boxFiles(dir, 'libvirt').uploadJournal, '{"uploads":[]}\n');

    // The second build of the version is not smoke-tested: the first build's results must go.
    const staging = stageBuild(dir, 'run-2', 'second');
    const seen: string[] = [];
    const watcher = watch(dir, (_event, name) => {
      if (name && !seen.includes(name)) seen.push(name);
    });
    try {
      assert.equal(putInPlace(staging), boxFiles(dir, 'libvirt').box);
      // inotify reports the renames in the order they happened; wait for the staging folder's removal, the last.
      const stagingName = path.basename(staging.dir);
      for (let waited = 0; !seen.includes(stagingName) && waited < 200; waited++) await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      watcher.close();
    }
    assert.deepEqual(seen, ['libvirt.box.sha256', 'libvirt.json', 'libvirt.smoke.json', 'libvirt.smoke.xml', 'libvirt.box', path.basename(staging.dir)]);
    assert.deepEqual(contents(dir), {
      'libvirt.box': 'second',
      'libvirt.box.sha256': `${sha256('second')}  libvirt.box\n`,
      'libvirt.json': `${JSON.stringify(record({ size: 6, sha256: sha256('second'), run_id: 'run-2' }), null, 2)}\n`,
      'libvirt.uploads.json': '{"uploads":[]}\n',
      'virtualbox.box': 'another provider',
    });
  });

  it('a build that fails before it is put in place leaves the last good box as it was, and no folder it made', async () => {
    const boxes = tempDir('boxsmith-store-');
    const good = versionDirectory(boxes, 'phusion', 'b', '1.0.0');
    putInPlace(stageBuild(good, 'run-1', 'good', { smoke: true }));
    const lastGood = contents(boxes);

    // The same version built again, failing after its box was staged (smoke test, full disk...).
    removeStaging(stageBuild(good, 'run-2', 'bad'));
    assert.deepEqual(contents(boxes), lastGood);
    assert.deepEqual(readdirSync(good).filter(isStagingName), []);

    // A new version failing: its version folder (made for the staging folder) goes too, the box's folder stays.
    const failed = stageBuild(versionDirectory(boxes, 'phusion', 'b', '2.0.0'), 'run-3', 'bad');
    assert.equal(failed.createdFolder, versionDirectory(boxes, 'phusion', 'b', '2.0.0'));
    removeStaging(failed);
    assert.deepEqual(readdirSync(path.join(boxes, 'phusion', 'b')), ['1.0.0']);
    assert.deepEqual(contents(boxes), lastGood);

    // A build without its record (it failed before the record step) is refused, not put in place.
    const unrecorded = createStaging(good, 'libvirt', 'run-4');
    mkdirSync(unrecorded.dir, { recursive: true });
    writeFileSync(stagedFiles(unrecorded).box, 'unrecorded');
    writeChecksumFile(stagedFiles(unrecorded).box, sha256('unrecorded'));
    assert.throws(() => putInPlace(unrecorded), /libvirt\.json is missing: a box goes into place only with its checksum and build record$/);
    removeStaging(unrecorded);
    assert.deepEqual(contents(boxes), lastGood);
  });
});
