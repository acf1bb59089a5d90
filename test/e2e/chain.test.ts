// The whole chain, for real, on QEMU, with the faults that kill builds in real life: boxsmith
// SIGKILLed while it makes the base image and while Packer's VM runs, then the nightly that must
// succeed after them with no manual clean-up (debootstrap base image, Packer, smoke test under
// vagrant-libvirt, publish, reports), a second build of the same box queued behind it, a second
// nightly that finds nothing changed and the plans after a change; then, on that one box,
// boxsmith SIGKILLed during `vagrant up`, libvirtd dying mid-smoke, Ctrl-C, and two smoke tests
// at once (one breaking a check, one passing). After every fault nothing of the run is left within
// 10 s and the box is byte-for-byte as built. One box is built and every case shares it.
// It needs root, loop devices, QEMU, vagrant-libvirt and Debian's archive; where the host lacks
// any of them it says so loudly and skips (BOXSMITH_E2E=1 makes that a failure, BOXSMITH_E2E=0
// skips on purpose).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, existsSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { baseImagePrerequisites } from '../../src/build/base-image.ts';
import { mountsBelow } from '../../src/exec/mounts.ts';
import { listPids, readCmdline, readProcStat, describeCommand } from '../../src/exec/proc.ts';
import { findExecutable } from '../../src/exec/tools.ts';
import { cacheRoot } from '../../src/inputs/cache.ts';
import { runIdsIn, snapshotFolder, snapshotHost, waitUntilClean, type HostSnapshot } from '../faults/leftovers.ts';
import { listeningSockets, onLoopback, processesOfRuns } from '../sockets.ts';
import { CLI, REPO_ROOT, run, tempDir } from '../helpers.ts';
import { bootBox } from './booted-box.ts';
import { startSftpServer } from '../publish/sftp-server.ts';
import { serveWithNginx } from '../publish/nginx-server.ts';
import { assertAdded, vagrant } from '../publish/vagrant-client.ts';

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
  // debian-12 is on LVM: its volumes are made in libguestfs's appliance.
  const missing = await baseImagePrerequisites(true);
  for (const tool of ['qemu-system-x86_64', 'packer', 'vagrant', 'libvirtd', 'virtlogd', 'virsh', 'dnsmasq', 'apt-cacher-ng', 'rclone', 'nginx', 'sshd', 'ssh']) {
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
  const banner = `\n${'!'.repeat(78)}\n!! END-TO-END CHAIN SKIPPED: ${reason}\n!! The real build, smoke test, fault cases and clean-up on QEMU did NOT run on this host.\n${'!'.repeat(78)}\n`;
  process.stderr.write(banner);
  process.stdout.write(banner);
  if (process.env.BOXSMITH_E2E === '1') throw new Error(`BOXSMITH_E2E=1 but the chain cannot run here: ${reason}`);
}

const root = tempDir('boxsmith-e2e-');
const logsDir = path.join(root, 'logs');
const env = {
  ...process.env,
  BOXSMITH_BOXES: path.join(root, 'boxes'),
  BOXSMITH_WORK: path.join(root, 'work'),
  BOXSMITH_LOGS: logsDir,
  CI: 'true',
};
const VERSION = '1.0.0';
const reportsDir = path.join(root, 'reports');
const catalogDir = path.join(root, 'catalog');
const boxDir = path.join(root, 'boxes', 'phusion', 'debian-12-amd64', VERSION);
/** What may hold a run's mounts, loop devices and scratch files. */
const folders = [root, path.join(cacheRoot(), 'base-images')];

function boxsmith(args: string[], extra: Record<string, string> = {}) {
  const started = Date.now();
  const result = run(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, env: { ...env, ...extra }, timeout: 40 * 60_000 });
  return { ...result, seconds: Math.round((Date.now() - started) / 1000) };
}

/** A boxsmith run in the background, its output collected, to be faulted while it works. */
class Running {
  readonly child: ChildProcess;
  output = '';
  done = false;
  readonly exited: Promise<number | null>;
  readonly started = Date.now();

  constructor(args: string[], extra: Record<string, string> = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk) => (this.output += chunk));
    this.child.stderr!.on('data', (chunk) => (this.output += chunk));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.done = true;
        resolve(code ?? (signal ? -1 : null));
      }),
    );
  }

  get seconds(): number {
    return Math.round((Date.now() - this.started) / 1000);
  }

  /** Waits until `condition` holds; fails with the run's output if it exits first or 20 minutes pass. */
  async until(what: string, condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 20 * 60_000;
    while (!condition()) {
      assert.ok(!this.done, `the run ended before ${what}:\n${this.output.slice(-4000)}`);
      assert.ok(Date.now() < deadline, `no ${what} within 20 minutes:\n${this.output.slice(-4000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Processes whose command line matches, other than this test's own. */
function processesMatching(pattern: RegExp): number[] {
  return listPids().filter((pid) => pid !== process.pid && pattern.test(describeCommand(pid, readProcStat(pid)?.comm ?? '')));
}

/** Nothing of the runs in the logs folder (or of the programs boxsmith starts) left within 10 s. */
async function assertNothingLeft(before: HostSnapshot, context: string): Promise<void> {
  const left = await waitUntilClean(before, { runIds: runIdsIn(logsDir), folders, withinMs: 10_000 });
  assert.deepEqual(left, [], `left behind after ${context}`);
}

/** Polls `read` until it gives `expected` or 10 s passed (the watchdog removes scratch folders last); returns the last reading. */
async function within10s<T>(read: () => T, expected: T): Promise<T> {
  const deadline = Date.now() + 10_000;
  let value = read();
  while (JSON.stringify(value) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    value = read();
  }
  return value;
}

/** The box as built: the box, its checksum and record (a smoke test's results are its own). */
function builtBox(): Record<string, string> {
  const all = snapshotFolder(boxDir);
  return Object.fromEntries(Object.entries(all).filter(([name]) => !/\.smoke\.(json|xml)$/.test(name)));
}

/** A copy of the definitions with `extra` appended to debian-12.yaml. */
function definitionsWith(extra: string): string {
  const definitions = path.join(tempDir(), 'definitions');
  cpSync(path.join(REPO_ROOT, 'definitions'), definitions, { recursive: true });
  writeFileSync(path.join(definitions, 'debian-12.yaml'), `${readFileSync(path.join(definitions, 'debian-12.yaml'), 'utf8')}${extra}`);
  return definitions;
}

describe('the real chain on QEMU (debian-12), and the faults that kill builds', { skip: reason ?? false }, () => {
  let asBuilt: Record<string, string> | undefined;
  let smokeAsTested: Record<string, string> | undefined;

  it('fault: boxsmith SIGKILLed while it makes the base image (debootstrap mounts held): no process, mount or loop device left within 10 s', async () => {
    // A base image nobody has cached (the user's password is part of its key), so debootstrap runs.
    const definitions = definitionsWith('vagrant_user:\n  password: fault-base-image\n');
    const before = snapshotHost({ folders });
    const build = new Running(['build', 'debian-12', '--version', '0.0.1'], { BOXSMITH_DEFINITIONS: definitions });
    const baseImages = path.join(cacheRoot(), 'base-images');
    await build.until('a mount below the base image work folder', () => mountsBelow(baseImages).length > 0);
    const held = mountsBelow(baseImages);
    build.child.kill('SIGKILL');
    await build.exited;
    process.stdout.write(`SIGKILL after ${build.seconds} s with ${held.join(', ')} mounted\n`);
    await assertNothingLeft(before, 'a SIGKILL during the base image');
    const abandoned = await within10s(() => run('sh', ['-c', `ls -d ${baseImages}/*.work-${build.child.pid} 2>/dev/null || true`]).stdout.trim(), '');
    assert.equal(abandoned, '', 'the watchdog removes the killed run\'s base image work folder');
  });

  it('fault: boxsmith SIGKILLed during the Packer build (QEMU running): no process, VM or work folder left within 10 s', async () => {
    const before = snapshotHost({ folders });
    const build = new Running(['build', 'debian-12', '--version', VERSION]);
    const vms = () => processesMatching(new RegExp(`qemu-system-x86_64 .*${path.join(root, 'work').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    await build.until('the build VM', () => vms().length > 0);
    build.child.kill('SIGKILL');
    await build.exited;
    process.stdout.write(`SIGKILL after ${build.seconds} s with QEMU ${vms().join(', ')} running\n`);
    await assertNothingLeft(before, 'a SIGKILL during the Packer build');
    const work = await within10s(() => run('sh', ['-c', `ls ${path.join(root, 'work')} 2>/dev/null || true`]).stdout.trim(), '');
    assert.equal(work, '', 'the killed build\'s work folder (the VM disk) is removed');
    assert.equal(existsSync(path.join(boxDir, 'libvirt.box')), false);
  });

  it('npm run nightly then builds debian-12 (the one box this host can), smoke-tests it, puts it in place with no manual clean-up, publishes it and reports the Ubuntu boxes and VirtualBox/VMware as skipped with why; a second build of it meanwhile waits its turn; its package cache killed mid-build comes back', async () => {
    const before = snapshotHost({ folders });
    // Registry secrets in its environment, as a nightly job has them: no child may inherit them, no file may hold them.
    const secrets = { VAGRANT_CLOUD_TOKEN: 'e2e-token-9f3c1d7a', HCP_CLIENT_ID: 'e2e-client-4b8e', HCP_CLIENT_SECRET: "e2e secret~!'()-77aa" };
    const build = new Running(['nightly', '--version', VERSION, '--to', `static:${catalogDir}`, '--report-dir', reportsDir], secrets);
    // Every socket the build's processes listen on, and every secret found in their environments, sampled while it runs.
    const sockets = new Set<string>();
    const inherited = new Set<string>();
    let sampledProcesses = 0;
    const sampler = setInterval(() => {
      const pids = processesOfRuns(runIdsIn(logsDir));
      for (const socket of listeningSockets(pids)) sockets.add(socket);
      for (const pid of pids) {
        if (pid === build.child.pid) continue;
        sampledProcesses++;
        let environ = '';
        try {
          environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
        } catch {
          continue; // gone meanwhile
        }
        for (const [name, value] of Object.entries(secrets)) if (environ.includes(value)) inherited.add(`${name} in pid ${pid} (${describeCommand(pid, readProcStat(pid)?.comm ?? '')})`);
      }
    }, 2000);
    // While it runs, the same box and provider again: it must wait for the first, not collide.
    // Only once the nightly's own Packer VM speaks does it hold the box's build lock; a line that
    // merely names Packer, or another run's packer process, comes before it takes the lock.
    await build.until('the build stage', () => /qemu\.box:/.test(build.output));
    const second = new Running(['build', 'debian-12', '--version', '1.0.1']);
    await second.until('the second build saying it waits', () => /waiting for/i.test(second.output));
    process.stdout.write(`second build: ${second.output.split('\n').find((line) => /waiting for/i.test(line))}\n`);
    second.child.kill('SIGINT');
    assert.equal(await second.exited, 130, second.output);

    // The package cache killed while the guest fetches packages through it: started again on its
    // port, apt's retries get through, and the build goes on.
    const buildLog = path.join(/run \S+: logs in (\S+)/.exec(build.output)![1]!, 'debian-12-qemu', 'build.log');
    const cachePid = Number(/apt-cacher-ng \(pid (\d+)\)/.exec(build.output)?.[1]);
    assert.ok(cachePid > 0, build.output);
    await build.until('the guest fetching packages', () => existsSync(buildLog) && /qemu\.box: Get:\d+/.test(readFileSync(buildLog, 'utf8')));
    process.kill(cachePid, 'SIGKILL');
    await build.until('the package cache started again', () => new RegExp(`package cache \\(apt-cacher-ng pid ${cachePid}\\) died; \\d+ serves port`).test(build.output));
    const status = await build.exited;
    clearInterval(sampler);
    process.stdout.write(`the nightly (building debian-12) took ${build.seconds} s\n${build.output}\n`);
    process.stdout.write(`sockets the build listened on:\n  ${[...sockets].sort().join('\n  ')}\n`);
    assert.ok([...sockets].some((socket) => /qemu-system/.test(socket)), `the sampler saw the build VM's sockets: ${[...sockets].join(', ')}`);
    assert.deepEqual([...sockets].filter((socket) => !onLoopback(socket)), [], 'every socket of the build on loopback');
    assert.ok(sampledProcesses > 0);
    assert.deepEqual([...inherited], [], 'no child of the build inherits a registry secret');
    const patterns = Object.values(secrets).flatMap((value) => ['-e', value]);
    const holding = run('grep', ['-r', '-a', '-l', '-F', ...patterns, logsDir, path.join(root, 'boxes'), reportsDir, catalogDir]).stdout.split('\n').filter(Boolean);
    assert.deepEqual(holding, [], 'no file the build wrote (logs, records, checksums, results) holds a secret');
    // Inside the box, the guest's disk as users get it (compressed, the box hides nothing from grep above).
    const inGuest = run('sh', ['-c', 'tar -xzOf "$1" box.img | grep -a -c -F -e "$2" -e "$3" -e "$4"; true', 'sh', path.join(boxDir, 'libvirt.box'), ...Object.values(secrets)], { timeout: 10 * 60_000 });
    assert.equal(inGuest.stdout.trim(), '0', 'the guest disk holds no secret');
    assert.equal(status, 0, build.output);
    const record = JSON.parse(readFileSync(path.join(boxDir, 'libvirt.json'), 'utf8'));
    const smoke = JSON.parse(readFileSync(path.join(boxDir, 'libvirt.smoke.json'), 'utf8'));
    process.stdout.write(`seconds per stage: ${JSON.stringify(record.durations_s)}; smoke: ${JSON.stringify(smoke.durations_s)}\n`);
    assert.equal(smoke.passed, true, JSON.stringify(smoke.checks.filter((c: { passed: boolean }) => !c.passed), null, 2));
    assert.ok(smoke.checks.length >= 10);
    assert.deepEqual(record.smoke_test, { passed: true, checks: smoke.checks.length });
    assert.equal(run('sha256sum', ['-c', 'libvirt.box.sha256'], { cwd: boxDir }).status, 0);
    assert.match(readFileSync(path.join(boxDir, 'libvirt.smoke.xml'), 'utf8'), /<testsuite name="phusion\/debian-12-amd64 1\.0\.0 \(libvirt\)" tests="\d+" failures="0"/);
    assert.equal(existsSync(path.join(root, 'boxes', 'phusion', 'debian-12-amd64', '1.0.1', 'libvirt.box')), false);
    // Fresh: built against the archive as it is today, every package listed beside the box.
    assert.deepEqual(record.archive.map((suite: { suite: string }) => suite.suite), ['http://deb.debian.org/debian bookworm', 'http://deb.debian.org/debian bookworm-updates', 'http://deb.debian.org/debian-security bookworm-security']);
    // The generic kernel the build installed and rebooted into, not the image's cloud kernel.
    assert.match(record.kernel, /^\d+\.\d+\.\d+-\d+-amd64$/);
    for (const name of ['boots the kernel that linux-image-amd64 installed', 'root filesystem on an LVM logical volume that can grow', 'swap active on an LVM logical volume']) {
      const check = smoke.checks.find((c: { name: string }) => c.name === name) as { passed: boolean; output?: string } | undefined;
      assert.equal(check?.passed, true, `${name}: ${JSON.stringify(check)}`);
      process.stdout.write(`smoke: ${name}: ${JSON.stringify(check)}\n`);
    }
    assert.match(record.docker, /^\d+\.\d+/);
    assert.ok(record.input_hash && record.inputs['scripts/docker.sh'], JSON.stringify(record.inputs));
    const manifest = readFileSync(path.join(boxDir, 'libvirt.packages.tsv'), 'utf8').trim().split('\n');
    assert.equal(manifest.length, record.packages.count);
    assert.ok(manifest.some((line) => /^docker\.io\t/.test(line)), 'docker.io in the manifest');
    // The night's report: the box passed and was published; what this host cannot build is skipped, saying why.
    const night = JSON.parse(readFileSync(path.join(reportsDir, VERSION, 'report.json'), 'utf8')) as { exit_code: number; cells: { box: string; provider: string; status: string; reason?: string; published?: { ok: boolean } }[] };
    const cell = (box: string, provider: string) => night.cells.find((c) => c.box === box && c.provider === provider);
    assert.equal(night.exit_code, 0);
    assert.equal(cell('debian-12', 'qemu')?.status, 'passed');
    assert.equal(cell('debian-12', 'qemu')?.published?.ok, true);
    const reported = (cell('debian-12', 'qemu') as { smoke?: { passed: boolean; checks: { name: string }[] } }).smoke;
    assert.deepEqual({ passed: reported?.passed, checks: reported?.checks.map((c) => c.name) }, { passed: true, checks: smoke.checks.map((c: { name: string }) => c.name) }, 'the report has the smoke checks as the build ran them');
    for (const box of ['ubuntu-12.04', 'ubuntu-14.04']) {
      assert.equal(cell(box, 'virtualbox')?.status, 'skipped');
      assert.match(cell(box, 'virtualbox')!.reason!, /VirtualBox .* is not installed on this host/);
      assert.match(cell(box, 'vmware')!.reason!, /VMware .* is not installed on this host/);
      assert.equal(cell(box, 'qemu')?.status, 'skipped');
      assert.match(cell(box, 'qemu')!.reason!, /its ISO ubuntu-1[24]\.04\.\d-server-amd64\.iso is not in the ISO cache and no URL serves it/);
    }
    for (const file of ['report.json', 'report.xml', 'report.html']) assert.ok(existsSync(path.join(reportsDir, 'latest', file)), file);
    assert.ok(existsSync(path.join(catalogDir, 'phusion', 'debian-12-amd64')), 'the catalog names the box');
    await assertNothingLeft(before, 'the build');
    asBuilt = builtBox();
    smokeAsTested = snapshotFolder(boxDir);
  });

  it('a second nightly with nothing changed boots no VM and builds nothing (debian-12 unchanged since the first); a change to scripts/docker.sh plans a rebuild naming it, a change to a VMware-only script plans nothing for this host', async () => {
    const vmsSeen = new Set<string>();
    const watch = setInterval(() => {
      // The plan's `qemu-system-x86_64 --version` (the hypervisor version, an input) is no VM, nor is
      // it once it has exited and lost its command line ("[qemu-system-x86]", a zombie for a moment:
      // CI saw it): a VM, Packer or vagrant has its command line for its whole life.
      const running = processesMatching(/qemu-system(?!\S* --version$)|packer build|vagrant up|debootstrap/).filter((pid) => (readCmdline(pid) ?? []).length > 0);
      for (const pid of running) vmsSeen.add(describeCommand(pid, readProcStat(pid)?.comm ?? ''));
    }, 100);
    const again = new Running(['nightly', '--version', '1.0.2', '--to', `static:${catalogDir}`, '--report-dir', reportsDir]);
    const status = await again.exited;
    clearInterval(watch);
    process.stdout.write(`the second nightly took ${((Date.now() - again.started) / 1000).toFixed(1)} s\n${again.output}\n`);
    assert.equal(status, 0, again.output);
    assert.deepEqual([...vmsSeen], [], 'no VM, Packer, vagrant up or debootstrap while nothing changed');
    const night = JSON.parse(readFileSync(path.join(reportsDir, '1.0.2', 'report.json'), 'utf8')) as { cells: { box: string; provider: string; status: string; unchanged_since?: string }[] };
    const debian = night.cells.find((c) => c.box === 'debian-12' && c.provider === 'qemu');
    assert.equal(debian?.status, 'unchanged', JSON.stringify(debian));
    assert.equal(debian?.unchanged_since, VERSION);
    assert.equal(existsSync(path.join(root, 'boxes', 'phusion', 'debian-12-amd64', '1.0.2')), false, 'no new version folder');
    assert.deepEqual(builtBox(), asBuilt, 'the box as built');

    // A commit's worth of change, in a copy of boxsmith's tree, planned against the same boxes/.
    const tree = path.join(tempDir('boxsmith-e2e-tree-'), 'boxsmith');
    for (const part of ['src', 'templates', 'scripts', 'keys', 'definitions', 'package.json', 'tsconfig.json']) cpSync(path.join(REPO_ROOT, part), path.join(tree, part), { recursive: true });
    symlinkSync(realpathSync(path.join(REPO_ROOT, 'node_modules')), path.join(tree, 'node_modules'));
    const plan = () => run(process.execPath, ['--import', 'tsx', path.join(tree, 'src/cli.ts'), 'nightly', '--plan', '--json', '--to', `static:${catalogDir}`], { cwd: tree, env }).stdout;
    const debianPlan = (json: string) => {
      const matrix = JSON.parse(json) as { include: { cell: string; changed_inputs?: string[] }[]; unchanged: { box: string; provider: string; since: string }[] };
      return { build: matrix.include.find((entry) => entry.cell === 'debian-12:qemu'), unchanged: matrix.unchanged.find((entry) => entry.box === 'debian-12' && entry.provider === 'qemu') };
    };
    appendFileSync(path.join(tree, 'scripts/vmware-tools.sh'), '# a VMware-only change\n');
    const afterVmware = debianPlan(plan());
    assert.equal(afterVmware.build, undefined, 'a VMware-only change builds nothing here');
    assert.equal(afterVmware.unchanged?.since, VERSION);
    appendFileSync(path.join(tree, 'scripts/docker.sh'), '# a change every Docker box sees\n');
    const rebuild = debianPlan(plan()).build;
    assert.deepEqual(rebuild?.changed_inputs, ['scripts/docker.sh'], JSON.stringify(rebuild));
  });

  it('the debian-12 box published through rclone to SFTP on 127.0.0.1 (Debian\'s sshd), boxsmith SIGKILLed mid-upload leaving no catalog, published again, served by nginx (nginx-conf) and added by name with Debian\'s vagrant through VAGRANT_SERVER_URL; the box tampered on the remote refused', async (t) => {
    const server = await startSftpServer(tempDir('boxsmith-e2e-sftp-'));
    t.after(() => server.stop());
    // nginx runs as nobody: the folders above the remote one must let it through.
    chmodSync(path.dirname(server.remoteDir), 0o755);
    const url = await serveWithNginx(t, server.remoteDir);
    const to = `rclone:${server.connection},base-url=${url}`;
    const provider = path.join(server.remoteDir, 'phusion', 'boxes', 'debian-12-amd64', 'versions', VERSION, 'providers', 'libvirt');

    const killed = new Running(['publish', 'debian-12', '--to', to, '--version', VERSION]);
    await killed.until('the upload under way on the remote', () => {
      try {
        return statSync(path.join(provider, '.amd64.box.boxsmith-upload')).size > 0;
      } catch {
        return false;
      }
    });
    killed.child.kill('SIGKILL');
    await killed.exited;
    assert.equal(existsSync(path.join(server.remoteDir, 'phusion', 'debian-12-amd64')), false, 'no catalog names the half-uploaded box');
    assert.equal((await fetch(`${url}/phusion/debian-12-amd64`, { method: 'HEAD' })).status, 404);

    const published = boxsmith(['publish', 'debian-12', '--to', to, '--version', VERSION]);
    process.stdout.write(`publish through rclone/SFTP after the kill: ${published.seconds} s\n${published.stdout}\n`);
    assert.equal(published.status, 0, published.stdout + published.stderr);
    assert.match(published.stdout, /VAGRANT_SERVER_URL=http:\/\/127\.0\.0\.1:\d+/);
    const head = await fetch(`${url}/phusion/debian-12-amd64`, { method: 'HEAD' });
    assert.match(head.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(readFileSync(path.join(provider, 'amd64.box')).equals(readFileSync(path.join(boxDir, 'libvirt.box'))), true, 'the box on the remote is the box as built');

    const added = await vagrant(['box', 'add', 'phusion/debian-12-amd64'], { home: tempDir('boxsmith-e2e-vagrant-home-'), serverUrl: url });
    assertAdded(added, VERSION, 'phusion/debian-12-amd64');
    const box = path.join(provider, 'amd64.box');
    const bytes = readFileSync(box);
    bytes[bytes.length - 4096] = bytes[bytes.length - 4096]! ^ 0xff;
    writeFileSync(box, bytes);
    const refused = await vagrant(['box', 'add', 'phusion/debian-12-amd64'], { home: tempDir('boxsmith-e2e-vagrant-home-'), serverUrl: url });
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /The checksum of the downloaded box did not match the expected\s+value/);
  });

  it('the VMware Tools kernel hook (scripts/vmware-tools.sh) in the booted box, with a stand-in vmware-config-tools.pl: a further kernel installed with apt, its headers after its image and its image after its headers, rebuilds once per kernel, from the second package, when the first is configured', async () => {
    const before = snapshotHost();
    const started = Date.now();
    const box = await bootBox(path.join(boxDir, 'libvirt.box'), { memoryMb: 1024, cpus: 2, accelerator: 'tcg' });
    try {
      const booted = Math.round((Date.now() - started) / 1000);
      box.upload(path.join(REPO_ROOT, 'scripts', 'vmware-tools.sh'), '/tmp/vmware-tools.sh');
      const log = '/var/log/boxsmith-stand-in-vmware-config-tools.log';
      const setUp = box.root(`set -eu
        . /tmp/vmware-tools.sh
        install_rebuild_hook
        # boxsmith's stand-in for VMware Tools' vmware-config-tools.pl (no VMware here): it records
        # each call with the dpkg state of that kernel's image and headers at the moment of the call.
        cat > /usr/bin/vmware-config-tools.pl <<'STANDIN'
#!/bin/sh
version=$3
echo "$* | image $(dpkg-query -W -f='\${Status}' "linux-image-$version") | headers $(dpkg-query -W -f='\${Status}' "linux-headers-$version")" >> ${log}
STANDIN
        chmod 0755 /usr/bin/vmware-config-tools.pl
        lsblk >&2; lvs >&2; swapon --show >&2
        apt-get update -q > /dev/null
        uname -r`);
      assert.equal(setUp.status, 0, `${setUp.stdout}\n${setUp.stderr}`);
      process.stdout.write(`the box as booted (lsblk, lvs, swapon):\n${setUp.stderr}\n`);
      const running = setUp.stdout.trim().split('\n').pop()!;
      const rt = running.replace(/-amd64$/, '-rt-amd64');
      // Unsafe I/O and no initramfs only spare minutes under emulation; the hooks run as always.
      const apt = (packages: string) =>
        box.root(`INITRD=No DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io ${packages} > /tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }; cat ${log} 2>/dev/null || true`);
      // The running kernel's image has long been configured; its headers come now.
      const headersLast = apt(`linux-headers-${running}`);
      assert.equal(headersLast.status, 0, headersLast.stdout + headersLast.stderr);
      // A kernel whose headers come first, then its image.
      const headersFirst = apt(`linux-headers-${rt}`);
      assert.equal(headersFirst.status, 0, headersFirst.stdout + headersFirst.stderr);
      assert.doesNotMatch(headersFirst.stdout, new RegExp(`-k ${rt} `), 'nothing built before the image is there');
      const imageLast = apt(`linux-image-${rt}`);
      assert.equal(imageLast.status, 0, imageLast.stdout + imageLast.stderr);
      // Called again for both kernels (as a reinstall would): the marker keeps it at one build.
      const again = box.root(`/etc/kernel/header_postinst.d/zz-boxsmith-vmware-tools ${running} && /etc/kernel/postinst.d/zz-boxsmith-vmware-tools ${rt} && cat ${log}`);
      assert.equal(again.status, 0, again.stdout + again.stderr);
      const calls = again.stdout.trim().split('\n');
      process.stdout.write(`kernel hook: booted in ${booted} s, whole case ${Math.round((Date.now() - started) / 1000)} s; stand-in calls:\n${calls.join('\n')}\n`);
      assert.deepEqual(calls.map((line) => line.split(' | ')[0]), [`-d -k ${running}`, `-d -k ${rt}`], 'one build per kernel, in install order');
      assert.match(calls[0]!, / \| image install ok installed \| headers install ok half-configured$/, 'from the headers, the image configured');
      assert.match(calls[1]!, / \| image install ok half-configured \| headers install ok installed$/, 'from the image, the headers configured');
    } finally {
      await box.stop();
    }
    await assertNothingLeft(before, 'the kernel hook case');
  });

  it('fault: libvirtd dies mid-smoke: the test fails saying so, nothing left within 10 s, the box and its results unchanged', async () => {
    const before = snapshotHost({ folders });
    const test = new Running(['test', 'debian-12', '--version', VERSION]);
    await test.until('libvirt starting the domain', () => /Starting domain|Waiting for domain/.test(test.output));
    const daemons = processesMatching(/^(\S*\/)?libvirtd\b/);
    for (const pid of daemons) process.kill(pid, 'SIGKILL');
    const status = await test.exited;
    process.stdout.write(`libvirtd (${daemons.join(', ')}) killed after ${test.seconds} s; test:box exited ${status}:\n${test.output.slice(-1500)}\n`);
    assert.equal(status, 1, test.output);
    assert.match(test.output, /libvirtd was gone; started again to remove the domain/);
    assert.doesNotMatch(test.output, /^\s+at .*:\d+/m, 'no stack trace');
    await assertNothingLeft(before, 'libvirtd dying mid-smoke');
    assert.deepEqual(snapshotFolder(boxDir), smokeAsTested);
  });

  it('fault: boxsmith SIGKILLed during vagrant up while another smoke test runs on the same libvirtd (a definition the box does not meet, 2048 MB): the other goes on and fails exactly that check; nothing left within 10 s; the box as built', async () => {
    assert.ok(asBuilt, 'needs the box built above');
    const before = snapshotHost({ folders });
    const definitions = definitionsWith('hardware:\n  memory_mb: 2048\n');
    const strict = new Running(['test', 'debian-12', '--version', VERSION], { BOXSMITH_DEFINITIONS: definitions, BOXSMITH_LOGS: path.join(root, 'logs-strict') });
    await strict.until('the first smoke test starting libvirtd', () => /libvirtd/.test(strict.output));
    const killed = new Running(['test', 'debian-12', '--version', VERSION]);
    await killed.until('libvirt starting the domain', () => /Starting domain|Waiting for domain/.test(killed.output));
    killed.child.kill('SIGKILL');
    await killed.exited;
    process.stdout.write(`SIGKILL after ${killed.seconds} s, during vagrant up, beside another smoke test\n`);
    const strictStatus = await strict.exited;
    process.stdout.write(`the other smoke test (2048 MB) took ${strict.seconds} s\n`);
    assert.equal(strictStatus, 1, strict.output);
    assert.match(strict.output, /FAIL {2}2048 MB of memory +expected MemTotal between 1740 and 2048 MB; got \d+/);
    assert.doesNotMatch(strict.output, /FAIL {2}(?!2048 MB of memory)/, 'every other check passes: the box works after the faults');
    await assertNothingLeft(before, 'a SIGKILL during vagrant up beside another smoke test');
    assert.deepEqual(await waitUntilClean(before, { runIds: runIdsIn(path.join(root, 'logs-strict')), folders }), []);
    assert.deepEqual(builtBox(), asBuilt);
  });

  it('Ctrl-C during vagrant up: exit 130, the domain and its pool removed, the daemons stopped, the box as built', async () => {
    const before = snapshotHost({ folders });
    const test = new Running(['test', 'debian-12', '--version', VERSION]);
    await test.until('libvirt starting the domain', () => /Starting domain|Waiting for domain/.test(test.output));
    test.child.kill('SIGINT');
    assert.equal(await test.exited, 130, test.output);
    await assertNothingLeft(before, 'Ctrl-C during vagrant up');
    assert.deepEqual(builtBox(), asBuilt);
  });
});
