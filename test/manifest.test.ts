// The package manifest beside a box: parsed and checked line by line, diffed against another, and
// found for the previous version of a box x provider in a boxes/ folder.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { boxFiles } from '../src/store/box-store.ts';
import { packageChanges, packageChangesSincePrevious, parseManifest, readManifest } from '../src/store/manifest.ts';
import { tempDir } from './helpers.ts';

const BOOKWORM = [
  'base-files\t12.4+deb12u7\tamd64',
  'docker.io\t20.10.24+dfsg1-1+b3\tamd64',
  'libc6\t2.36-9+deb12u8\tamd64',
  'libc6\t2.36-9+deb12u8\ti386',
  'openssl\t3.0.14-1~deb12u2\tamd64',
  'tzdata\t2024a-0+deb12u1\tall',
  '',
].join('\n');

describe('package manifest', () => {
  it('parses name, version and architecture of every line', () => {
    const packages = parseManifest(BOOKWORM, 'libvirt.packages.tsv');
    assert.equal(packages.length, 6);
    assert.deepEqual(packages[0], { name: 'base-files', version: '12.4+deb12u7', architecture: 'amd64' });
    assert.deepEqual(packages[5], { name: 'tzdata', version: '2024a-0+deb12u1', architecture: 'all' });
    assert.deepEqual(parseManifest('', 'empty.tsv'), []);
  });

  it('a bad line is an error naming file:line and what is wrong', () => {
    const bad = (text: string) => () => parseManifest(text, '/boxes/x/libvirt.packages.tsv');
    assert.throws(bad('base-files\t12.4\tamd64\nlibc6 2.36-9 amd64\n'), {
      message: '/boxes/x/libvirt.packages.tsv:2: expected name, version and architecture separated by tabs, found "libc6 2.36-9 amd64"',
    });
    assert.throws(bad('Libc6\t2.36\tamd64\n'), { message: '/boxes/x/libvirt.packages.tsv:1: "Libc6" is not a package name' });
    assert.throws(bad('libc6\t2.36 beta\tamd64\n'), { message: '/boxes/x/libvirt.packages.tsv:1: "2.36 beta" is not a version of libc6' });
    assert.throws(bad('libc6\t2.36\t\n'), { message: '/boxes/x/libvirt.packages.tsv:1: "" is not an architecture (libc6)' });
    assert.throws(bad('\n'), /libvirt\.packages\.tsv:1: expected name, version and architecture/);
  });

  it('readManifest names a file it cannot read', () => {
    const missing = path.join(tempDir(), 'libvirt.packages.tsv');
    assert.throws(() => readManifest(missing), { message: `cannot read the package manifest ${missing}: ENOENT` });
  });

  it('packageChanges: added (no from), removed (no to), upgraded, sorted by name; the same package twice is no change', () => {
    const before = parseManifest(BOOKWORM, 'before');
    const after = parseManifest(
      BOOKWORM.replace('openssl\t3.0.14-1~deb12u2', 'openssl\t3.0.15-1~deb12u1').replace('tzdata\t2024a-0+deb12u1\tall\n', '') + 'ca-certificates\t20230311\tall\n',
      'after',
    );
    assert.deepEqual(packageChanges(before, after), [
      { name: 'ca-certificates', to: '20230311' },
      { name: 'openssl', from: '3.0.14-1~deb12u2', to: '3.0.15-1~deb12u1' },
      { name: 'tzdata', from: '2024a-0+deb12u1' },
    ]);
    assert.deepEqual(packageChanges(before, before), []);
  });

  it('packageChanges: a package of two architectures is told apart by name:architecture', () => {
    const before = parseManifest(BOOKWORM, 'before');
    const after = parseManifest(BOOKWORM.replace('libc6\t2.36-9+deb12u8\ti386', 'libc6\t2.36-9+deb12u9\ti386'), 'after');
    assert.deepEqual(packageChanges(before, after), [{ name: 'libc6:i386', from: '2.36-9+deb12u8', to: '2.36-9+deb12u9' }]);
  });
});

describe('package changes since the previous version', () => {
  /** boxes/phusion/debian-12-amd64/<version>/ with a box for each provider named, and a manifest when given. */
  function version(boxes: string, name: string, provider: string, manifest?: string): void {
    const dir = path.join(boxes, 'phusion', 'debian-12-amd64', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `${provider}.box`), 'box');
    if (manifest !== undefined) writeFileSync(boxFiles(dir, provider).packageManifest, manifest);
  }
  const box = (v: string, boxProvider = 'libvirt') => ({ org: 'phusion', boxName: 'debian-12-amd64', boxProvider, version: v });

  it('diffs against the newest older version with a box for that provider, in Vagrant\'s version order', () => {
    const boxes = tempDir();
    version(boxes, '20261130.031500.0', 'libvirt', 'openssl\t3.0.13-1~deb12u1\tamd64\n');
    version(boxes, '20261201.031500.0', 'libvirt', 'openssl\t3.0.14-1~deb12u2\tamd64\n');
    // Newer than the one asked about, and a version with only a VirtualBox box: neither is "previous".
    version(boxes, '20261203.031500.0', 'libvirt', 'openssl\t9\tamd64\n');
    version(boxes, '20261201.120000.0', 'virtualbox', 'openssl\t8\tamd64\n');
    version(boxes, '20261202.031500.0', 'libvirt', 'openssl\t3.0.15-1~deb12u1\tamd64\n');
    assert.deepEqual(packageChangesSincePrevious(boxes, box('20261202.031500.0')), {
      since: '20261201.031500.0',
      changes: [{ name: 'openssl', from: '3.0.14-1~deb12u2', to: '3.0.15-1~deb12u1' }],
    });
  });

  it('undefined for a first version, or when either version has no manifest (built before manifests)', () => {
    const boxes = tempDir();
    version(boxes, '1.0.0', 'libvirt', 'openssl\t3.0.13\tamd64\n');
    assert.equal(packageChangesSincePrevious(boxes, box('1.0.0')), undefined);
    version(boxes, '1.0.1', 'libvirt');
    assert.equal(packageChangesSincePrevious(boxes, box('1.0.1')), undefined);
    version(boxes, '1.0.2', 'libvirt', 'openssl\t3.0.14\tamd64\n');
    assert.equal(packageChangesSincePrevious(boxes, box('1.0.2')), undefined, 'its previous version 1.0.1 has no manifest');
    assert.equal(packageChangesSincePrevious(tempDir(), box('1.0.2')), undefined, 'no such box at all');
  });

  it('a damaged previous manifest is an error naming its file and line', () => {
    const boxes = tempDir();
    version(boxes, '1.0.0', 'libvirt', 'openssl\t3.0.13\tamd64\ngarbage\n');
    version(boxes, '1.0.1', 'libvirt', 'openssl\t3.0.14\tamd64\n');
    const file = path.join(boxes, 'phusion', 'debian-12-amd64', '1.0.0', 'libvirt.packages.tsv');
    assert.throws(() => packageChangesSincePrevious(boxes, box('1.0.1')), { message: `${file}:2: expected name, version and architecture separated by tabs, found "garbage"` });
  });
});
