// The whole chain, for real, on QEMU: build the debian-12 box (debootstrap base image, Packer,
// smoke test under vagrant-libvirt), then show that a box breaking one check fails exactly that
// check and that an interrupted smoke test leaves nothing behind. It needs root, loop devices,
// QEMU, vagrant-libvirt and Debian's archive; where the host lacks any of them it says so loudly
// and skips (BOXSMITH_E2E=1 makes that a failure, BOXSMITH_E2E=0 skips on purpose).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { baseImagePrerequisites } from '../../src/build/base-image.ts';
import { findExecutable } from '../../src/exec/tools.ts';
import { CLI, REPO_ROOT, run, tempDir } from '../helpers.ts';

const SBIN = { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

async function archiveReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request('http://deb.debian.org/debian/dists/bookworm/Release', { method: 'HEAD', timeout: 10_000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 400);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function whyNot(): Promise<string | undefined> {
  if (process.env.BOXSMITH_E2E === '0') return 'BOXSMITH_E2E=0';
  const missing = await baseImagePrerequisites();
  for (const tool of ['qemu-system-x86_64', 'packer', 'vagrant', 'libvirtd', 'virtlogd', 'virsh', 'dnsmasq', 'apt-cacher-ng']) {
    if (!findExecutable(tool, SBIN)) missing.push(tool);
  }
  if (missing.length) return `this host lacks: ${missing.join('; ')}`;
  if (!(await archiveReachable())) return "Debian's archive (deb.debian.org) is not reachable";
  const plugins = run('vagrant', ['plugin', 'list'], { env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: '1' } });
  if (!/vagrant-libvirt/.test(plugins.stdout)) return 'vagrant-libvirt is not installed';
  return undefined;
}

const reason = await whyNot();
if (reason) {
  const banner = `\n${'!'.repeat(78)}\n!! END-TO-END CHAIN SKIPPED: ${reason}\n!! The real build, smoke test and clean-up on QEMU did NOT run on this host.\n${'!'.repeat(78)}\n`;
  process.stderr.write(banner);
  process.stdout.write(banner);
  if (process.env.BOXSMITH_E2E === '1') throw new Error(`BOXSMITH_E2E=1 but the chain cannot run here: ${reason}`);
}

const root = tempDir('boxsmith-e2e-');
const env = {
  ...process.env,
  BOXSMITH_BOXES: path.join(root, 'boxes'),
  BOXSMITH_WORK: path.join(root, 'work'),
  BOXSMITH_LOGS: path.join(root, 'logs'),
  CI: 'true',
};
const VERSION = '1.0.0';
const boxDir = path.join(root, 'boxes', 'phusion', 'debian-12-amd64', VERSION);

function boxsmith(args: string[], extra: Record<string, string> = {}) {
  const started = Date.now();
  const result = run(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, env: { ...env, ...extra }, timeout: 40 * 60_000 });
  return { ...result, seconds: Math.round((Date.now() - started) / 1000) };
}

/** What of a smoke test could be left behind: daemons, VMs, libvirt domains, volumes, networks. */
function leftovers(): string[] {
  const processes = run('ps', ['-eo', 'args']).stdout.split('\n').filter((line) => /^(\S*\/)?(libvirtd|virtlogd|dnsmasq|qemu-system-x86_64)\b/.test(line) && !line.includes('box.img'));
  const domains = existsSync('/etc/libvirt/qemu') ? readdirSync('/etc/libvirt/qemu').filter((f) => f.startsWith('boxsmith-')) : [];
  const volumes = existsSync('/var/lib/libvirt/images') ? readdirSync('/var/lib/libvirt/images').filter((f) => f.includes('debian-12-amd64')) : [];
  const networks = existsSync('/etc/libvirt/qemu/networks') ? readdirSync('/etc/libvirt/qemu/networks').filter((f) => f.startsWith('vagrant-libvirt')) : [];
  return [...processes, ...domains.map((d) => `domain ${d}`), ...volumes.map((v) => `volume ${v}`), ...networks.map((n) => `network ${n}`)];
}

describe('the real chain on QEMU (debian-12)', { skip: reason ?? false }, () => {
  it('npm run build:box debian-12 builds, smoke-tests and puts the box in place', () => {
    const result = boxsmith(['build', 'debian-12', '--version', VERSION]);
    process.stdout.write(`build:box debian-12 took ${result.seconds} s\n${result.stdout}\n`);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    const record = JSON.parse(readFileSync(path.join(boxDir, 'libvirt.json'), 'utf8'));
    const smoke = JSON.parse(readFileSync(path.join(boxDir, 'libvirt.smoke.json'), 'utf8'));
    process.stdout.write(`seconds per stage: ${JSON.stringify(record.durations_s)}; smoke: ${JSON.stringify(smoke.durations_s)}\n`);
    assert.equal(smoke.passed, true, JSON.stringify(smoke.checks.filter((c: { passed: boolean }) => !c.passed), null, 2));
    assert.ok(smoke.checks.length >= 10);
    assert.deepEqual(record.smoke_test, { passed: true, checks: smoke.checks.length });
    assert.equal(run('sha256sum', ['-c', 'libvirt.box.sha256'], { cwd: boxDir }).status, 0);
    assert.match(readFileSync(path.join(boxDir, 'libvirt.smoke.xml'), 'utf8'), /<testsuite name="phusion\/debian-12-amd64 1\.0\.0 \(libvirt\)" tests="\d+" failures="0"/);
    assert.deepEqual(leftovers(), []);
  });

  it('a definition the box does not meet (2048 MB) fails exactly that check, exit 1, nothing left behind', () => {
    assert.ok(existsSync(path.join(boxDir, 'libvirt.box')), 'needs the box built above');
    const definitions = path.join(tempDir(), 'definitions');
    cpSync(path.join(REPO_ROOT, 'definitions'), definitions, { recursive: true });
    writeFileSync(path.join(definitions, 'debian-12.yaml'), `${readFileSync(path.join(definitions, 'debian-12.yaml'), 'utf8')}hardware:\n  memory_mb: 2048\n`);
    const result = boxsmith(['test', 'debian-12', '--version', VERSION], { BOXSMITH_DEFINITIONS: definitions });
    process.stdout.write(`test:box with a 2048 MB definition took ${result.seconds} s\n`);
    assert.equal(result.status, 1, `${result.stdout}\n${result.stderr}`);
    const smoke = JSON.parse(readFileSync(path.join(boxDir, 'libvirt.smoke.json'), 'utf8'));
    assert.deepEqual(
      smoke.checks.filter((c: { passed: boolean }) => !c.passed).map((c: { name: string }) => c.name),
      ['2048 MB of memory'],
      `${result.stdout}\n${result.stderr}`,
    );
    assert.match(result.stdout, /FAIL {2}2048 MB of memory +expected MemTotal between 1740 and 2048 MB; got \d+/);
    assert.deepEqual(leftovers(), []);
  });

  it('Ctrl-C during vagrant up: exit 130, the domain and its volume removed, the daemons stopped', async () => {
    const logs = path.join(root, 'logs-interrupt');
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'test', 'debian-12', '--version', VERSION], {
      cwd: REPO_ROOT,
      env: { ...env, BOXSMITH_LOGS: logs },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    let done = false;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        done = true;
        resolve(code);
      }),
    );
    const deadline = Date.now() + 10 * 60_000;
    // Interrupt once libvirt has the domain, while vagrant waits for it to boot.
    while (!/Waiting for domain to get an IP address|Starting domain/.test(output) && Date.now() < deadline && !done) {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.match(output, /Starting domain|Waiting for domain/, output);
    child.kill('SIGINT');
    assert.equal(await exited, 130, output);
    assert.deepEqual(leftovers(), []);
  });
});
