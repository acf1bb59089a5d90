// The smoke checks are generated from the definition, and judge real outputs the way the spec
// says; results are reported as JUnit XML that a CI server reads. (Booting a box is in test/e2e/.)
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadDefinition } from '../src/definitions/load.ts';
import { CONTAINER_GREETING, smokeChecks, type SmokeCheck } from '../src/smoke/checks.ts';
import { compareVersions } from '../src/store/box-store.ts';
import { junitXml, resultTable } from '../src/smoke/report.ts';
import type { SmokeResult } from '../src/smoke/smoke.ts';
import { guestFrozen, smokeVagrantfile } from '../src/smoke/smoke.ts';
import { REPO_ROOT, run, tempDir } from './helpers.ts';

const KEY = readFileSync(path.join(REPO_ROOT, 'keys', 'vagrant.pub'), 'utf8');

function checksFor(box: string, provider: 'qemu' | 'vmware' | 'virtualbox' = 'qemu', change?: (d: ReturnType<typeof loadDefinition>['definition']) => void) {
  const { definition } = loadDefinition(box);
  const copy = structuredClone(definition);
  change?.(copy);
  return smokeChecks(copy, { provider, insecurePublicKey: KEY });
}

function find(checks: SmokeCheck[], pattern: RegExp): SmokeCheck {
  const check = checks.find((c) => pattern.test(c.name));
  assert.ok(check, `a check matching ${pattern}: ${checks.map((c) => c.name).join(', ')}`);
  return check;
}

describe('smoke checks follow the definition', () => {
  it('debian-12: every spec point, LVM and the installed kernel among them; no Chef, no VMware hook', () => {
    const names = checksFor('debian-12').map((c) => c.name);
    assert.deepEqual(names, [
      'kernel >= 3.8',
      '2 CPUs',
      '1024 MB of memory',
      'root filesystem of about 40 GB',
      'boots the kernel that linux-image-amd64 installed',
      'root filesystem on an LVM logical volume that can grow',
      'swap active on an LVM logical volume',
      'kernel command line has cgroup_enable=memory swapaccount=1',
      'memory cgroup with swap accounting',
      'vagrant has passwordless sudo',
      "vagrant authorizes Vagrant's insecure key",
      'Docker daemon active',
      'docker run prints the expected line',
      'a container started with --memory 64m gets that limit, swap accounted',
    ]);
  });

  it('ubuntu-12.04 on VMware adds LVM, Chef from a package and the VMware Tools hook', () => {
    const names = checksFor('ubuntu-12.04', 'vmware').map((c) => c.name);
    assert.ok(names.includes('root filesystem on an LVM logical volume that can grow'));
    assert.ok(names.includes('swap active on an LVM logical volume'));
    assert.ok(names.includes('boots the kernel that linux-generic-lts-trusty linux-headers-generic-lts-trusty installed'));
    assert.ok(names.includes('Chef installed from a package'));
    assert.ok(names.includes('VMware Tools rebuilt on kernel upgrades'));
    assert.ok(!checksFor('ubuntu-12.04', 'virtualbox').some((c) => c.name.startsWith('VMware')), 'not on VirtualBox');
  });

  it('a definition with 2048 MB expects 2048 MB: a 1024 MB box fails exactly that check', () => {
    const checks = checksFor('debian-12', 'qemu', (d) => {
      d.hardware.memory_mb = 2048;
    });
    const memory = find(checks, /MB of memory/);
    assert.equal(memory.name, '2048 MB of memory');
    assert.equal(memory.judge('973', 0), false);
    assert.equal(memory.judge('1985', 0), true);
    assert.equal(find(checksFor('debian-12'), /MB of memory/).judge('973', 0), true);
  });

  it('judges outputs as the spec says', () => {
    const checks = checksFor('ubuntu-12.04');
    const kernel = find(checks, /^kernel >=/);
    assert.equal(kernel.judge('3.13.0-170-generic', 0), true);
    assert.equal(kernel.judge('3.8.0-44-generic', 0), true);
    assert.equal(kernel.judge('3.2.0-126-generic', 0), false, '12.04 without the enablement kernel');
    assert.equal(kernel.judge('6.1.0-50-cloud-amd64', 0), true);

    const cmdline = find(checks, /command line/);
    assert.equal(cmdline.judge('BOOT_IMAGE=/vmlinuz ro cgroup_enable=memory swapaccount=1', 0), true);
    assert.equal(cmdline.judge('BOOT_IMAGE=/vmlinuz ro cgroup_enable=memory swapaccount=0', 0), false);

    const disk = find(checks, /root filesystem of about/);
    assert.equal(disk.judge('39440', 0), true);
    assert.equal(disk.judge('9800', 0), false);

    const root = find(checks, /^root filesystem on an LVM/);
    assert.equal(root.judge('/dev/mapper/vagrant--vg-root ext4 vagrant-vg root 0', 0), true);
    assert.equal(root.judge('/dev/mapper/vagrant--vg-root ext4 vagrant-vg root 2560.00', 0), true);
    assert.equal(root.judge('/dev/sda1 ext4', 0), false, 'a plain partition');
    assert.equal(root.judge('/dev/mapper/crypt ext4', 0), false, 'device-mapper but no logical volume');
    const swap = find(checks, /^swap active/);
    assert.equal(swap.judge('/dev/dm-1 /dev/mapper/vagrant--vg-swap_1', 0), true);
    assert.equal(swap.judge('', 0), false, 'no swap on a volume');
    const installed = find(checks, /^boots the kernel/);
    assert.equal(installed.judge('3.13.0-170-generic from linux-image-3.13.0-170-generic', 0), true);
    assert.equal(installed.judge('', 1), false, 'the running kernel is not one the packages brought');
    assert.equal(find(checks, /Chef/).judge('chef: /opt/chef/bin/chef-client', 0), true);
    assert.equal(find(checks, /Chef/).judge('dpkg-query: no path found matching pattern', 1), false);
    assert.equal(find(checks, /2 CPUs/).judge('1', 0), false);
    assert.equal(find(checks, /insecure key/).judge(KEY, 0), true);
    assert.equal(find(checks, /insecure key/).judge('ssh-ed25519 AAAAC3Nza... vagrant', 0), false);
    assert.equal(find(checks, /docker run/).judge(CONTAINER_GREETING, 0), true);
    assert.equal(find(checks, /--memory 64m/).judge('67108864 swap:67108864', 0), true);
    assert.equal(find(checks, /--memory 64m/).judge('max swap:max', 0), false);
  });

  it('a box without Docker in its definition is not asked to run containers', () => {
    const names = checksFor('debian-12', 'qemu', (d) => {
      d.docker.install = false;
    }).map((c) => c.name);
    assert.ok(!names.some((n) => /docker|Docker|container/.test(n)));
  });

  it('the guest commands are valid bash', () => {
    for (const box of ['debian-12', 'ubuntu-12.04', 'ubuntu-14.04']) {
      for (const check of checksFor(box, 'vmware')) {
        const result = run('bash', ['-n', '-c', check.command]);
        assert.equal(result.status, 0, `${box}: ${check.name}: ${result.stderr}`);
      }
    }
  });

  it('the in-guest Docker image is made from the guest\'s own dash and libraries (no registry needed)', () => {
    const command = find(checksFor('debian-12'), /docker run/).command;
    assert.match(command, /tar -ch bin\/dash \$\(ldd \/bin\/dash/);
    assert.match(command, /docker import - boxsmith-smoke:latest/);
    const registry = smokeChecks(loadDefinition('debian-12').definition, { provider: 'qemu', insecurePublicKey: KEY, dockerImage: 'hello-world' });
    assert.match(find(registry, /docker run/).command, /docker run --rm hello-world$/);
    assert.equal(find(registry, /docker run/).judge('Hello from Docker!\nThis message shows...', 0), true);
  });
});

describe('a frozen guest', () => {
  it('is told by its console: a soft lockup or a kernel panic, not an ordinary boot', () => {
    const dir = tempDir();
    const console = path.join(dir, 'console.log');
    writeFileSync(console, '[    2.1] Run /init as init process\n[   33.3] systemd[1]: Started ssh.service\n');
    assert.equal(guestFrozen(console), undefined);
    writeFileSync(console, `${'x'.repeat(100_000)}\n[  452.640221] watchdog: BUG: soft lockup - CPU#0 stuck for 399s! [ksoftirqd/0:14]\n`);
    assert.equal(guestFrozen(console), 'soft lockup - CPU#0 stuck for 399s');
    writeFileSync(console, '[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n');
    assert.equal(guestFrozen(console), 'Kernel panic - not syncing: VFS: Unable to mount root fs');
    assert.equal(guestFrozen(path.join(dir, 'missing.log')), undefined);
  });
});

describe('smoke results', () => {
  const result: SmokeResult = {
    box: 'debian-12',
    name: 'phusion/debian-12-amd64',
    version: '1.0.0',
    provider: 'libvirt',
    passed: false,
    checks: [
      { name: '2 CPUs', command: 'nproc', expected: '2', actual: '2', exit_code: 0, passed: true, duration_s: 0.4 },
      { name: '2048 MB of memory', command: "awk '/MemTotal/' <x>", expected: 'between 1740 and 2048 MB', actual: '973', exit_code: 0, passed: false, duration_s: 0.3 },
    ],
    durations_s: { up: 120 },
    tested_at: '2026-11-28T16:00:00.000Z',
    vagrant_version: 'Vagrant 2.3.4',
  };

  it('JUnit XML: one test case a check, the failure with command, expected and actual; xmllint-valid', () => {
    const xml = junitXml(result);
    assert.match(xml, /<testsuite name="phusion\/debian-12-amd64 1\.0\.0 \(libvirt\)" tests="2" failures="1"/);
    assert.match(xml, /<testcase classname="[^"]+" name="2 CPUs" time="0\.4"><\/testcase>/);
    assert.match(xml, /<failure message="expected between 1740 and 2048 MB, got 973">command: awk &apos;\/MemTotal\/&apos; &lt;x&gt;\nexpected: between 1740 and 2048 MB\nactual \(exit 0\): 973<\/failure>/);
    const file = path.join(tempDir(), 'r.xml');
    writeFileSync(file, xml);
    // xmllint comes from libxml2-utils, which setup installs: a missing one is a failure, not a pass.
    const lint = run('xmllint', ['--noout', file]);
    assert.equal(lint.status, 0, lint.stderr);
  });

  it('the console table names the failed check with what was expected', () => {
    const table = resultTable(result);
    assert.match(table, /^phusion\/debian-12-amd64 1\.0\.0 \(libvirt\): FAILED$/m);
    assert.match(table, /^ {2}FAIL {2}2048 MB of memory {2}expected between 1740 and 2048 MB; got 973$/m);
    assert.match(table, /^ {2}pass {2}2 CPUs$/m);
  });

  it('the smoke Vagrantfile names the box and sets no CPUs or memory (the box must), and ruby accepts it', () => {
    const text = smokeVagrantfile('phusion/debian-12-amd64', 'boxsmith-x-', 'boxsmith-x', '/tmp/console.log', 'tcg');
    assert.doesNotMatch(text, /\.cpus|\.memory/);
    assert.match(text, /lv\.driver = "qemu"/);
    assert.match(text, /lv\.storage_pool_name = "boxsmith-x"/);
    assert.doesNotMatch(smokeVagrantfile('p/b', 'x-', 'x', '/tmp/c', 'kvm'), /lv\.driver/);
    const file = path.join(tempDir(), 'Vagrantfile');
    writeFileSync(file, text);
    assert.equal(run('ruby', ['-c', file]).status, 0);
  });

  it('box versions sort as Vagrant sorts them', () => {
    assert.deepEqual(['1.10.0', '1.2.1', '20261128.93000.0', '1.2'].sort(compareVersions), ['1.2', '1.2.1', '1.10.0', '20261128.93000.0']);
    assert.equal(compareVersions('1.2', '1.2.0'), 0);
  });
});

describe('"Docker daemon active" on upstart (a stand-in sudo prints what upstart\'s service says)', () => {
  /** The check's command without its systemd branch (this host may run systemd), `service` answered by the stand-in. */
  function onUpstart(said: string): string {
    const command = find(checksFor('ubuntu-12.04'), /Docker daemon active/).command;
    const upstart = /^if \[ -d \/run\/systemd\/system \]; then .*?; else (.*); fi$/.exec(command)?.[1];
    assert.ok(upstart, command);
    const bin = tempDir();
    writeFileSync(path.join(bin, 'sudo'), `#!/bin/sh\necho '${said}'\n`, { mode: 0o755 });
    return run('bash', ['-c', upstart], { env: { PATH: `${bin}:${process.env.PATH}` } }).stdout.trim();
  }

  it('"docker start/running, process 1234" (the job docker-static.sh writes, or docker.io\'s) is active', () => {
    assert.equal(onUpstart('docker start/running, process 1234'), 'active');
  });

  it('"docker stop/waiting" is not, nor is a sysvinit "docker is not running"', () => {
    assert.equal(onUpstart('docker stop/waiting'), '');
    assert.equal(onUpstart(' * docker is not running'), '');
  });
});
