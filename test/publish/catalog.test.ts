// Catalog merging and retention, version order, target syntax, the usage lines after a publish, and
// secret redaction.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyRetention, mergeIntoCatalog, parseCatalog, type Catalog, type CatalogProvider } from '../../src/publish/catalog.ts';
import { compareVersions } from '../../src/store/box-store.ts';
import { PublishError, PublishUsageError } from '../../src/publish/errors.ts';
import { displayUrl, Redactor } from '../../src/publish/secrets.ts';
import { formatReport, type PublishReport } from '../../src/publish/report.ts';
import { formatTarget, parseTarget } from '../../src/publish/target.ts';
import { targetUsage } from '../../src/publish/usage.ts';

const NAME = 'phusion/ubuntu-14.04-amd64';

function provider(name: string, architecture = 'amd64', checksum = 'a'.repeat(64)): CatalogProvider {
  return { name, url: `https://boxes.example.org/${name}-${architecture}.box`, checksum_type: 'sha256', checksum, architecture };
}

describe('versions', () => {
  it('orders versions as Vagrant (RubyGems) does', () => {
    const sorted = ['1.10.0', '1.2.0', '20261128.163000.0', '20261128.90000.0', '1.2.0.rc1', '2'].sort(compareVersions);
    assert.deepEqual(sorted, ['1.2.0.rc1', '1.2.0', '1.10.0', '2', '20261128.90000.0', '20261128.163000.0']);
    assert.ok(compareVersions('1.10.0', '1.9.9') > 0);
    assert.ok(compareVersions('20261128.163000.0', '20261128.90000.0') > 0);
    assert.ok(compareVersions('1.2.0.rc1', '1.2.0') < 0);
    assert.equal(compareVersions('1.2', '1.2.0'), 0);
  });
});

describe('catalog merge and retention', () => {
  it('adds a version, keeping every other version and provider', () => {
    const existing: Catalog = {
      name: NAME,
      description: 'old text',
      custom: 'kept',
      versions: [{ version: '1.0.0', providers: [provider('virtualbox')] }],
    };
    const merged = mergeIntoCatalog(existing, { name: NAME, description: 'new text', version: '1.1.0', providers: [provider('libvirt')] });
    assert.equal(merged.description, 'new text');
    assert.equal(merged.custom, 'kept');
    assert.deepEqual(merged.versions.map((v) => [v.version, v.providers.map((p) => p.name)]), [['1.1.0', ['libvirt']], ['1.0.0', ['virtualbox']]]);
    assert.equal(existing.versions.length, 1, 'the input is not changed');
  });

  it('replaces the same provider and architecture, keeps the others; one default architecture per provider', () => {
    const existing: Catalog = {
      name: NAME,
      versions: [{ version: '1.0.0', providers: [{ ...provider('libvirt', 'arm64'), default_architecture: true }, provider('libvirt', 'amd64', 'b'.repeat(64)), provider('virtualbox')] }],
    };
    const merged = mergeIntoCatalog(existing, { name: NAME, description: '', version: '1.0.0', providers: [provider('libvirt', 'amd64', 'c'.repeat(64))] });
    const providers = merged.versions[0]!.providers;
    assert.deepEqual(providers.map((p) => `${p.name}/${p.architecture}`), ['libvirt/amd64', 'libvirt/arm64', 'virtualbox/amd64']);
    assert.equal(providers[0]!.checksum, 'c'.repeat(64));
    assert.equal(providers[0]!.default_architecture, false, 'arm64 stays the default');
  });

  it('lists the default architecture last of its provider: the entry Vagrant 2.3 takes (the last of a name)', () => {
    const first = mergeIntoCatalog(undefined, { name: NAME, description: '', version: '1.0.0', providers: [provider('libvirt', 'amd64')] });
    const merged = mergeIntoCatalog(first, { name: NAME, description: '', version: '1.0.0', providers: [provider('libvirt', 'arm64', 'd'.repeat(64))] });
    const providers = merged.versions[0]!.providers;
    assert.deepEqual(providers.map((p) => `${p.name}/${p.architecture}/${p.default_architecture}`), ['libvirt/arm64/false', 'libvirt/amd64/true']);
    // An older version listed the other way round (an earlier publish) is put in that order too.
    const older: Catalog = { name: NAME, versions: [{ version: '0.9.0', providers: [{ ...provider('libvirt', 'amd64'), default_architecture: true }, { ...provider('libvirt', 'arm64'), default_architecture: false }] }] };
    const reordered = mergeIntoCatalog(older, { name: NAME, description: '', version: '1.0.0', providers: [provider('libvirt', 'amd64')] });
    assert.deepEqual(reordered.versions[1]!.providers.map((p) => p.architecture), ['arm64', 'amd64']);
    assert.deepEqual(older.versions[0]!.providers.map((p) => p.architecture), ['amd64', 'arm64'], 'the input is not changed');
  });

  it('refuses a catalog of another box', () => {
    assert.throws(() => mergeIntoCatalog({ name: 'other/box', versions: [] }, { name: NAME, description: '', version: '1', providers: [] }), /for other\/box, not phusion/);
  });

  it('keeps the newest N versions', () => {
    const catalog: Catalog = { name: NAME, versions: ['1.0.0', '3.0.0', '2.0.0', '1.5.0'].map((version) => ({ version, providers: [] })) };
    const { catalog: kept, dropped } = applyRetention(catalog, 2);
    assert.deepEqual(kept.versions.map((v) => v.version), ['3.0.0', '2.0.0']);
    assert.deepEqual(dropped.map((v) => v.version), ['1.5.0', '1.0.0']);
    assert.throws(() => applyRetention(catalog, 0), PublishError);
  });

  it('reads only what Vagrant could read', () => {
    assert.throws(() => parseCatalog('{', 'x'), /x is not valid JSON/);
    assert.throws(() => parseCatalog('[]', 'x'), /not a Vagrant box catalog/);
    assert.throws(() => parseCatalog('{"name":"a/b","versions":[{"version":"1","providers":[{"name":"libvirt"}]}]}', 'x'), /providers\[0\] needs "name" and "url"/);
    assert.equal(parseCatalog('{"name":"a/b","versions":[]}', 'x').name, 'a/b');
  });
});

describe('targets', () => {
  it('parses static, vagrant-cloud and hcp targets', () => {
    assert.deepEqual(parseTarget('static:out/tree', '/work'), { kind: 'static', root: '/work/out/tree' });
    assert.deepEqual(parseTarget('static:/srv/boxes,base-url=https://boxes.example.org/'), { kind: 'static', root: '/srv/boxes', baseUrl: 'https://boxes.example.org' });
    assert.deepEqual(parseTarget('vagrant-cloud'), { kind: 'vagrant-cloud' });
    assert.deepEqual(parseTarget('vagrant-cloud:myorg'), { kind: 'vagrant-cloud', owner: 'myorg' });
    assert.deepEqual(parseTarget('hcp:registry1'), { kind: 'hcp', registry: 'registry1' });
    assert.equal(formatTarget(parseTarget('static:/srv/boxes,base-url=http://127.0.0.1:8099')), 'static:/srv/boxes,base-url=http://127.0.0.1:8099');
  });

  it('rejects what it cannot use', () => {
    for (const [text, message] of [
      ['static:', /needs a directory/],
      ['static:/x,port=1', /unknown static target option "port=1"/],
      ['static:/x,base-url=ftp://host', /must be an http, https or file URL/],
      ['static:/x,base-url=https://h/?token=1', /must not have a query/],
      ['vagrant-cloud:a/b', /not a user or organization name/],
      ['s3:bucket', /unknown target "s3:bucket"/],
    ] as const) {
      assert.throws(() => parseTarget(text), (error: unknown) => error instanceof PublishUsageError && message.test(error.message), text);
    }
  });
});

describe('usage lines printed after a publish', () => {
  it('names the base URL of a tree (file:// without one), or the registry owner of a hosted target', () => {
    const served = targetUsage({ kind: 'static', root: '/srv/boxes', baseUrl: 'https://boxes.example.org' }, NAME);
    assert.ok(served.includes('    export VAGRANT_SERVER_URL=https://boxes.example.org'), served.join('\n'));
    assert.ok(served.includes(`    vagrant init ${NAME}`));
    assert.ok(served.includes(`    config.vm.box_url = "https://boxes.example.org/${NAME}.json"`));
    assert.ok(targetUsage({ kind: 'static', root: '/srv/boxes' }, NAME).includes(`    config.vm.box_url = "file:///srv/boxes/${NAME}.json"`));
    assert.deepEqual(targetUsage({ kind: 'vagrant-cloud', owner: 'someone' }, NAME).slice(1), ['    vagrant init someone/ubuntu-14.04-amd64']);
    assert.match(targetUsage({ kind: 'hcp' }, NAME)[0]!, /until HashiCorp retires it \(hashicorp\/vagrant#13836\)/);
  });

  it('are shown once the version is released, not in a dry run or after a failure', () => {
    const report: PublishReport = { target: 'static:/srv/boxes', name: NAME, version: '1.0.0', dryRun: false, outcomes: [], released: true, ok: true, warnings: [], usage: ['users get it:', '    vagrant init x/y'] };
    assert.match(formatReport(report), /\n {2}users get it:\n {6}vagrant init x\/y$/);
    assert.doesNotMatch(formatReport({ ...report, dryRun: true }), /vagrant init/);
    assert.doesNotMatch(formatReport({ ...report, ok: false, released: false }), /vagrant init/);
  });
});

describe('secrets', () => {
  it('blanks out every registered secret, also URL-encoded', () => {
    const redactor = new Redactor();
    redactor.add('s3cr3t/token+value');
    redactor.add('abc'); // too short to be a real secret: ignored rather than blanking words
    assert.equal(redactor.redact('Bearer s3cr3t/token+value and s3cr3t%2Ftoken%2Bvalue, abc'), 'Bearer [redacted] and [redacted], abc');
  });

  it('shows URLs without their query (pre-signed signatures) and user info', () => {
    assert.equal(displayUrl('https://user:pw@storage.example.com/bucket/obj?X-Amz-Signature=abc'), 'https://storage.example.com/bucket/obj?…');
    assert.equal(displayUrl('https://api.example.com/api/v2/boxes'), 'https://api.example.com/api/v2/boxes');
  });
});
