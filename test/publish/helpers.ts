// Shared by the publish tests: small real .box files (what `vagrant box add` accepts: a tar.gz with
// metadata.json, a Vagrantfile and a disk image), laid out in a boxes root as builds leave them.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { boxFiles, versionDirectory, writeChecksumFile } from '../../src/store/box-store.ts';
import { readBuildRecord, writeBuildRecord } from '../../src/store/build-record.ts';

/** The real definition the tests publish: phusion/ubuntu-14.04-amd64. */
export const BOX = 'ubuntu-14.04';
export const ORG = 'phusion';
export const BOX_NAME = 'ubuntu-14.04-amd64';
export const NAME = `${ORG}/${BOX_NAME}`;

export function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** A box vagrant can add (it boots nothing): metadata.json, Vagrantfile, a small box.img. */
export function makeBoxFile(file: string, provider = 'libvirt', imageBytes = 64 * 1024): void {
  const work = mkdtempSync(path.join(tmpdir(), 'boxsmith-box-'));
  try {
    const metadata = provider === 'libvirt' ? { provider, format: 'qcow2', virtual_size: 1 } : { provider };
    writeFileSync(path.join(work, 'metadata.json'), JSON.stringify(metadata));
    writeFileSync(path.join(work, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\nend\n');
    // Random bytes: every box made here has its own checksum.
    writeFileSync(path.join(work, 'box.img'), randomBytes(imageBytes));
    mkdirSync(path.dirname(file), { recursive: true });
    const tar = spawnSync('tar', ['-czf', file, '-C', work, 'metadata.json', 'Vagrantfile', 'box.img'], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export type SmokeState = 'passed' | 'failed' | 'missing';

export interface BuiltBox {
  dir: string;
  file: string;
  sha256: string;
  size: number;
}

/** A finished build in `boxesDir` as a build leaves it (laid out by src/store/), with a smoke result. */
export function writeBuild(boxesDir: string, version: string, options: { provider?: string; smoke?: SmokeState; imageBytes?: number } = {}): BuiltBox {
  const provider = options.provider ?? 'libvirt';
  const dir = versionDirectory(boxesDir, ORG, BOX_NAME, version);
  const files = boxFiles(dir, provider);
  const file = files.box;
  makeBoxFile(file, provider, options.imageBytes);
  const sha256 = sha256Of(file);
  const smoke = options.smoke ?? 'passed';
  const size = statSync(file).size;
  writeChecksumFile(file, sha256);
  writeBuildRecord(files.record, {
    box: BOX,
    name: NAME,
    version,
    provider,
    file: path.basename(file),
    size,
    sha256,
    git_revision: '0123456789abcdef0123456789abcdef01234567',
    packer_version: '1.6.6',
    hypervisor_version: 'QEMU emulator version 7.2.0',
    base: { kind: 'iso', iso: 'ubuntu-14.04.6-server-amd64.iso' },
    run_id: 'test-run',
    built_at: '2026-11-28T16:30:00.000Z',
    durations_s: { build: 1 },
    smoke_test: smoke === 'missing' ? 'skipped' : { passed: smoke === 'passed', checks: 2 },
  });
  if (smoke !== 'missing') {
    const passed = smoke === 'passed';
    const result = { box: BOX, name: NAME, version, provider, passed, checks: [{ name: 'docker-run', passed }, { name: 'memory-cgroup', passed: true }] };
    writeFileSync(files.smokeResult, `${JSON.stringify(result, null, 2)}\n`);
  }
  return { dir, file, sha256, size };
}

export const BIG_BOX_BYTES = 200 * 1024 * 1024;

/**
 * A built version whose box is an uncompressed tar (Vagrant takes those too) of 200 MiB of random
 * bytes: large enough that copying and verifying it takes long enough to be caught mid-way,
 * quick to make (no gzip).
 */
export function writeBigBuild(boxesDir: string, version: string): void {
  const { dir, file } = writeBuild(boxesDir, version);
  const work = mkdtempSync(path.join(tmpdir(), 'boxsmith-fault-bigbox-'));
  writeFileSync(path.join(work, 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
  writeFileSync(path.join(work, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\nend\n');
  writeFileSync(path.join(work, 'box.img'), randomBytes(BIG_BOX_BYTES));
  const tar = spawnSync('tar', ['-cf', file, '-C', work, 'metadata.json', 'Vagrantfile', 'box.img'], { encoding: 'utf8' });
  rmSync(work, { recursive: true, force: true });
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  const sha256 = sha256Of(file);
  writeChecksumFile(file, sha256);
  const recordFile = boxFiles(dir, 'libvirt').record;
  writeBuildRecord(recordFile, { ...readBuildRecord(recordFile), sha256, size: statSync(file).size });
}
