// Hand-made nightly reports for the rendering tests: one night with a cell of every status, and
// earlier nights for the history.
import type { CellReport, NightlyReport } from '../../src/nightly/report-model.ts';
import { REPORT_SCHEMA } from '../../src/nightly/report-model.ts';

const MiB = 1024 * 1024;

export function passedCell(overrides: Partial<CellReport> = {}): CellReport {
  return {
    box: 'debian-12',
    name: 'phusion/debian-12-amd64',
    provider: 'qemu',
    status: 'passed',
    box_version: '20261202.031500.0',
    input_hash: 'a'.repeat(64),
    changed_inputs: ['scripts/docker.sh'],
    stages: [
      { name: 'render', status: 'passed', seconds: 0.4 },
      { name: 'inputs', status: 'passed', seconds: 2.1 },
      { name: 'build', status: 'passed', seconds: 612.5 },
      { name: 'package', status: 'passed', seconds: 41 },
      { name: 'smoke', status: 'passed', seconds: 95.2 },
      { name: 'record', status: 'passed', seconds: 0.1 },
      { name: 'publish', status: 'passed', seconds: 3.3 },
    ],
    artifact: { file: 'boxes/phusion/debian-12-amd64/20261202.031500.0/qemu.box', size: 431 * MiB, sha256: 'b'.repeat(64) },
    smoke: {
      passed: true,
      checks: [
        { name: 'docker runs a container', passed: true, duration_s: 4.2, expected: 'hello', actual: 'hello' },
        { name: '2 CPUs', passed: true, duration_s: 0.3, expected: '2', actual: '2' },
      ],
    },
    logs: '/var/log/boxsmith/debian-12-qemu',
    archive: [
      { suite: 'http://deb.debian.org/debian bookworm', date: '2026-11-15T09:12:00Z', sha256: 'c'.repeat(64) },
      { suite: 'http://deb.debian.org/debian bookworm-updates', date: '2026-12-01T20:10:00Z', sha256: 'd'.repeat(64) },
      { suite: 'http://security.debian.org/debian-security bookworm-security', date: '2026-12-01T22:40:00Z', sha256: 'e'.repeat(64) },
    ],
    kernel: '6.1.0-28-amd64',
    docker: '27.3.1',
    content: { used_bytes: 1110 * MiB, tar_bytes: 921 * MiB, tar_compressed_bytes: 430 * MiB, compression: 'gzip', level: 6, compressed_on: 'host', box_ratio: 1.002 },
    package_changes: {
      since: '20261201.031500.0',
      changes: [
        { name: 'linux-image-6.1.0-28-amd64', to: '6.1.119-1' },
        { name: 'linux-image-6.1.0-27-amd64', from: '6.1.115-1' },
        { name: 'openssl', from: '3.0.14-1~deb12u2', to: '3.0.15-1~deb12u1' },
      ],
    },
    published: { target: 'static:/srv/boxes', ok: true, released: true, dry_run: false },
    runner: 'farm-1',
    ...overrides,
  };
}

/** A night with every status: passed, failed at build, failed at smoke, skipped, unchanged. */
export function nightOfEveryStatus(version = '20261202.031500.0'): NightlyReport {
  return {
    schema: REPORT_SCHEMA,
    version,
    started_at: '2026-12-02T03:15:00.000Z',
    finished_at: '2026-12-02T04:02:30.000Z',
    exit_code: 1,
    cells: [
      passedCell({ box_version: version }),
      {
        box: 'debian-12', name: 'phusion/debian-12-amd64', provider: 'virtualbox', status: 'skipped',
        reason: 'VirtualBox is not installed on this host', stages: [],
      },
      {
        box: 'debian-12', name: 'phusion/debian-12-amd64', provider: 'vmware', status: 'skipped',
        reason: 'VMware Workstation is not installed on this host', stages: [],
      },
      {
        box: 'debian-11', name: 'phusion/debian-11-amd64', provider: 'qemu', status: 'unchanged',
        box_version: '20261130.031500.0', unchanged_since: '20261130.031500.0', input_hash: 'f'.repeat(64), changed_inputs: [], stages: [],
        artifact: { file: 'boxes/phusion/debian-11-amd64/20261130.031500.0/qemu.box', size: 402 * MiB, sha256: '1'.repeat(64) },
      },
      {
        box: 'ubuntu-22.04', name: 'phusion/ubuntu-22.04-amd64', provider: 'qemu', status: 'failed',
        reason: 'packer build exited with code 1', changed_inputs: ['no earlier build'],
        stages: [
          { name: 'render', status: 'passed', seconds: 0.5 },
          { name: 'inputs', status: 'passed', seconds: 30 },
          { name: 'build', status: 'failed', seconds: 1200, error: 'packer build exited with code 1' },
          { name: 'package', status: 'skipped' },
          { name: 'smoke', status: 'skipped' },
        ],
        logs: 'logs/ubuntu-22.04-qemu',
      },
      {
        box: 'ubuntu-24.04', name: 'phusion/ubuntu-24.04-amd64', provider: 'qemu', status: 'failed',
        reason: 'smoke test failed: 1 of 2 checks', box_version: version,
        stages: [
          { name: 'render', status: 'passed', seconds: 0.5 },
          { name: 'build', status: 'passed', seconds: 700 },
          { name: 'package', status: 'passed', seconds: 38 },
          { name: 'smoke', status: 'failed', seconds: 80, error: 'smoke test failed: 1 of 2 checks' },
          { name: 'publish', status: 'skipped' },
        ],
        artifact: { file: 'boxes/phusion/ubuntu-24.04-amd64/x/qemu.box', size: 512 * MiB, sha256: '2'.repeat(64) },
        smoke: {
          passed: false,
          checks: [
            { name: 'docker runs a container', passed: false, duration_s: 6, expected: 'hello', actual: 'docker: command not found\nexit 127' },
            { name: '2 CPUs', passed: true, duration_s: 0.2, expected: '2', actual: '2' },
          ],
        },
      },
    ],
  };
}

/** An earlier night of one passed cell (debian-12 on qemu) with the given build seconds and box size. */
export function earlierNight(version: string, buildSeconds: number, size: number): NightlyReport {
  return {
    schema: REPORT_SCHEMA,
    version,
    started_at: '2026-11-01T03:15:00.000Z',
    finished_at: '2026-11-01T03:30:00.000Z',
    exit_code: 0,
    cells: [passedCell({
      box_version: version,
      stages: [{ name: 'build', status: 'passed', seconds: buildSeconds }],
      artifact: { file: `boxes/phusion/debian-12-amd64/${version}/qemu.box`, size, sha256: '3'.repeat(64) },
    })],
  };
}
