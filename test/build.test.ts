// `boxsmith build` as users run it, with a stand-in packer (test/fixtures/build/packer) where a real
// build would take a VM and minutes: the .box lands in boxes/ with its checksum and record, a failed
// build leaves the last good box alone, a hung build is stopped at its time limit with nothing left
// running, and boxsmith killed with SIGKILL leaves nothing running either. The real Packer build of
// debian-12 is in test/e2e/.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { progressBar } from '../src/build/pipeline.ts';
import { FOLDER_MARKER } from '../src/files/owned-folder.ts';
import { displayLine } from '../src/build/run.ts';
import { inspectBox } from '../src/store/box-file.ts';
import { buildSandbox, STANDIN_PACKER } from './build-sandbox.ts';
import { boxsmith, CLI, REPO_ROOT, run, tempDir } from './helpers.ts';
import { VAGRANT, vagrant } from './publish/vagrant-client.ts';

/** A definitions folder with two stand-in boxes and the folders a build writes. */
const sandbox = () => buildSandbox('boxsmith-test-', ['standin', 'standin-b']);

/** The builds' folders in the sandbox's work folder (its ownership marker aside). */
function workFolders(root: string): string[] {
  return readdirSync(path.join(root, 'work')).filter((name) => name !== FOLDER_MARKER);
}

function build(env: Record<string, string>, args: string[]) {
  return boxsmith(['build', ...args, '--no-apt-cache', '--no-test'], env);
}

/** Processes whose command line has the marker, other than the search itself. */
function processesWith(marker: string): string[] {
  const result = run('pgrep', ['-af', marker]);
  return result.stdout.split('\n').filter((line) => line && !line.includes('pgrep'));
}

async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return condition();
}

describe('boxsmith build with a stand-in packer', () => {
  it('puts a verified box, its sha256, a build record and the package manifest into boxes/<org>/<name>/<version>/', () => {
    const { env, boxDir } = sandbox();
    const result = build(env, ['standin', '--version', '1.0.0']);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    const dir = boxDir('standin', '1.0.0');
    assert.deepEqual(readdirSync(dir).sort(), ['libvirt.box', 'libvirt.box.sha256', 'libvirt.json', 'libvirt.packages.tsv']);
    const check = run('sha256sum', ['-c', 'libvirt.box.sha256'], { cwd: dir });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const record = JSON.parse(readFileSync(path.join(dir, 'libvirt.json'), 'utf8'));
    assert.equal(record.name, 'phusion/standin-amd64');
    assert.equal(record.version, '1.0.0');
    assert.equal(record.provider, 'libvirt');
    assert.equal(record.packer_version, '1.6.6');
    assert.match(record.hypervisor_version, /QEMU emulator version/);
    assert.match(record.git_revision, /^([0-9a-f]{40}(-dirty)?|unknown)$/);
    assert.equal(record.sha256, readFileSync(path.join(dir, 'libvirt.box.sha256'), 'utf8').split(' ')[0]);
    assert.equal(record.compression, 'gzip');
    assert.deepEqual(Object.keys(record.durations_s), ['render', 'inputs', 'build', 'package']);
    // What the stand-in left as the guest's manifest (scripts/manifest.sh in a real build).
    assert.equal(record.kernel, '4.4.0-148-generic');
    assert.equal(record.docker, '1.6.2');
    assert.deepEqual(record.packages, { file: 'libvirt.packages.tsv', count: 2 });
    assert.match(readFileSync(path.join(dir, 'libvirt.packages.tsv'), 'utf8'), /^base-files\t7\.2ubuntu5\.6\tamd64\n/);
    // An installer box whose archive the host cannot read is built, and says so.
    assert.equal(record.archive, undefined);
    assert.match(result.stdout + result.stderr, /input archive unknown \(cannot read the archive state from http:\/\/127\.0\.0\.1:1\/ubuntu\/dists\/trusty\/InRelease: connection refused/);
    assert.match(result.stdout, /ok {6}standin \(qemu\)/);
  });

  it('a failed build leaves the last good box and its checksum untouched, and exits non-zero', () => {
    const { env, boxDir } = sandbox();
    assert.equal(build(env, ['standin', '--version', '2.0.0']).status, 0);
    const dir = boxDir('standin', '2.0.0');
    const before = ['libvirt.box', 'libvirt.box.sha256', 'libvirt.json', 'libvirt.packages.tsv'].map((f) => readFileSync(path.join(dir, f)));

    const failed = build({ ...env, STANDIN_MODE: 'fail' }, ['standin', '--version', '2.0.0']);
    assert.notEqual(failed.status, 0);
    assert.match(failed.stdout, /FAILED {2}standin \(qemu\): .*build/);
    const after = ['libvirt.box', 'libvirt.box.sha256', 'libvirt.json', 'libvirt.packages.tsv'].map((f) => readFileSync(path.join(dir, f)));
    assert.deepEqual(after, before);
    assert.deepEqual(readdirSync(dir).sort(), ['libvirt.box', 'libvirt.box.sha256', 'libvirt.json', 'libvirt.packages.tsv'], 'no partial files left');
  });

  it('a box without the guest\'s manifest is not put in place: one line naming what is missing, the last good box kept', () => {
    const { env, boxDir } = sandbox();
    assert.equal(build(env, ['standin', '--version', '3.0.0']).status, 0);
    const dir = boxDir('standin', '3.0.0');
    const before = readdirSync(dir).sort().map((f) => readFileSync(path.join(dir, f)));
    const failed = build({ ...env, STANDIN_MANIFEST: 'none' }, ['standin', '--version', '3.0.0']);
    assert.equal(failed.status, 1, failed.stdout + failed.stderr);
    assert.match(failed.stdout, /^FAILED {2}standin \(qemu\): Packer reported success but brought no packages\.tsv, kernel, docker, content\.tsv from the guest into \S+\/manifest \(scripts\/manifest\.sh\)$/m);
    assert.doesNotMatch(failed.stdout + failed.stderr, /^\s+at /m, 'no stack trace');
    assert.deepEqual(readdirSync(dir).sort().map((f) => readFileSync(path.join(dir, f))), before);
  });

  it('builds several boxes at once; one failure does not stop the others, and the exit code says so', () => {
    const { env, boxDir } = sandbox();
    // The stand-in fails for the box whose work folder names standin-b.
    const wrapper = path.join(tempDir(), 'packer');
    writeFileSync(wrapper, `#!/bin/sh\ncase "$*" in *standin-b-qemu*) export STANDIN_MODE=fail ;; esac\nexec '${STANDIN_PACKER}' "$@"\n`, { mode: 0o755 });
    const result = build({ ...env, BOXSMITH_PACKER: wrapper }, ['standin', 'standin-b', '--version', '3.0.0', '--parallel', '2']);
    assert.equal(result.status, 1, result.stdout);
    assert.ok(existsSync(path.join(boxDir('standin', '3.0.0'), 'libvirt.box')));
    assert.ok(!existsSync(path.join(boxDir('standin-b', '3.0.0'), 'libvirt.box')));
    assert.match(result.stdout, /ok {6}standin \(qemu\)/);
    assert.match(result.stdout, /FAILED {2}standin-b \(qemu\)/);
  });

  it('--timeout build=5s on a hung, SIGTERM-deaf packer: a clear message, non-zero, nothing left running', () => {
    const { env, root } = sandbox();
    const marker = `boxsmith-hang-${process.pid}-${Date.now()}`;
    const result = build({ ...env, STANDIN_MODE: 'hang', STANDIN_MARKER: path.join(root, marker) }, [
      'standin', '--version', '4.0.0', '--timeout', 'build=5s', '--grace', '2s',
    ]);
    assert.notEqual(result.status, 0);
    assert.ok(existsSync(path.join(root, `${marker}.started`)), 'the stand-in ran');
    assert.match(result.stdout, /FAILED {2}standin \(qemu\): .*"build".*5s/);
    const diagnostics = /diagnostics[^\n]*?(\/\S+\.txt)/.exec(result.stdout)?.[1];
    assert.ok(diagnostics && existsSync(diagnostics), `diagnostics file named: ${result.stdout}`);
    assert.match(readFileSync(diagnostics, 'utf8'), new RegExp(`${marker}-setsid`));
    assert.deepEqual(processesWith(marker), []);
  });

  it('--timeout run=4s limits the whole run, whatever the stage limits say', () => {
    const { env, root } = sandbox();
    const marker = `boxsmith-runlimit-${process.pid}-${Date.now()}`;
    const result = build({ ...env, STANDIN_MODE: 'hang', STANDIN_MARKER: path.join(root, marker) }, ['standin', '--version', '4.1.0', '--timeout', 'run=4s', '--grace', '1s']);
    assert.notEqual(result.status, 0);
    assert.match(result.stdout, /FAILED {2}standin \(qemu\): .*run's time limit of 4s/);
    assert.deepEqual(processesWith(marker), []);
  });

  it('boxsmith killed with SIGKILL mid-build: the watchdog leaves nothing of the run within 10 s', async () => {
    const { env, root } = sandbox();
    const marker = `boxsmith-orphan-${process.pid}-${Date.now()}`;
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'build', 'standin', '--version', '5.0.0', '--no-apt-cache', '--no-test'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, STANDIN_MODE: 'hang', STANDIN_MARKER: path.join(root, marker) },
      stdio: 'ignore',
    });
    try {
      assert.ok(await waitFor(() => existsSync(path.join(root, `${marker}.started`)), 60_000), 'the stand-in started');
      assert.ok(await waitFor(() => processesWith(marker).length >= 2, 10_000), 'its children run');
      child.kill('SIGKILL');
      assert.ok(await waitFor(() => processesWith(marker).length === 0, 10_000), `still alive: ${processesWith(marker).join('\n')}`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a second build of the same box and provider waits for the first, says so, and Ctrl-C ends the wait', async () => {
    const { env, root } = sandbox();
    const marker = `boxsmith-queue-${process.pid}-${Date.now()}`;
    const start = (version: string) =>
      spawn(process.execPath, ['--import', 'tsx', CLI, 'build', 'standin', '--version', version, '--no-apt-cache', '--no-test'], {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env, STANDIN_MODE: 'hang', STANDIN_MARKER: path.join(root, marker) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const first = start('8.0.0');
    let second: ReturnType<typeof start> | undefined;
    try {
      assert.ok(await waitFor(() => existsSync(path.join(root, `${marker}.started`)), 60_000), 'the first build reached Packer');
      second = start('8.0.1');
      let output = '';
      second.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      second.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const secondExited = new Promise<number | null>((resolve) => second!.on('exit', (code) => resolve(code)));
      assert.ok(await waitFor(() => /waiting for the build of standin \(qemu\) by pid \d+ since /.test(output), 30_000), output);
      assert.match(output, new RegExp(`by pid ${first.pid} since`));
      second.kill('SIGINT');
      assert.equal(await secondExited, 130);
      assert.doesNotMatch(output, /^\s+at /m);
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGKILL');
    }
    assert.ok(await waitFor(() => processesWith(marker).length === 0, 10_000), 'the watchdog of the killed first build ended its stand-in');
  });

  it('a package cache that cannot start: one line, exit 1, no stack trace', () => {
    const { env } = sandbox();
    const result = boxsmith(['build', 'standin', '--no-test', '--apt-cache-port', '40000'], env);
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /^boxsmith: apt-cacher-ng cannot listen on port 40000 \(above 32767\); choose a lower --apt-cache-port\n$/);
  });

  it('Ctrl-C mid-build: the stage is stopped, cleanups run (no work folder left), exit 130', async () => {
    const { env, root } = sandbox();
    const marker = `boxsmith-interrupt-${process.pid}-${Date.now()}`;
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'build', 'standin', '--version', '7.0.0', '--no-apt-cache', '--no-test', '--grace', '2s'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, STANDIN_MODE: 'hang', STANDIN_MARKER: path.join(root, marker) },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      assert.ok(await waitFor(() => existsSync(path.join(root, `${marker}.started`)), 60_000), 'the stand-in started');
      child.kill('SIGINT');
      assert.equal(await exited, 130);
      assert.deepEqual(processesWith(marker), []);
      assert.deepEqual(workFolders(root), [], 'the render step\'s cleanup removed the work folder');
      assert.ok(!existsSync(path.join(root, 'boxes', 'phusion', 'standin-amd64', '7.0.0', 'libvirt.box')));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a provider the host lacks, asked for by name: says which hypervisor is missing, exit 1', () => {
    const { env } = sandbox();
    const result = build(env, ['ubuntu-14.04', '--provider', 'virtualbox', '--provider', 'vmware']);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /nothing to build: virtualbox \(VirtualBox \(VBoxManage\) is not installed on this host \(no VBoxManage on PATH; install it, or set BOXSMITH_VBOXMANAGE to its path\)\); vmware \(VMware/);
    assert.doesNotMatch(result.stderr, /^\s+at /m);
  });

  it('ubuntu-14.04 on a host with QEMU only and no reachable mirror: names the missing hypervisors, the failed download and where to put the ISO', () => {
    const { env, root } = sandbox();
    // The real definition with its mirrors replaced by a refused local port, so the test never downloads.
    const file = path.join(env.BOXSMITH_DEFINITIONS, 'ubuntu-14.04.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/http:\/\/(old-)?releases\.ubuntu\.com\//g, 'http://127.0.0.1:9/'));
    const result = build({ ...env, BOXSMITH_VBOXMANAGE: path.join(root, 'no-vboxmanage'), BOXSMITH_VMRUN: path.join(root, 'no-vmrun') }, ['ubuntu-14.04']);
    assert.equal(result.status, 1);
    assert.match(result.stdout, /skipped ubuntu-14\.04 \(virtualbox\): VirtualBox \(VBoxManage\) is not installed on this host \(no .*no-vboxmanage on PATH; install it, or set BOXSMITH_VBOXMANAGE/);
    assert.match(result.stdout, /skipped ubuntu-14\.04 \(vmware\): VMware/);
    assert.match(result.stdout, /FAILED {2}ubuntu-14\.04 \(qemu\): could not download ubuntu-14\.04\.6-server-amd64\.iso from any of its URLs:\n {2}http:\/\/127\.0\.0\.1:9\/14\.04\/ubuntu-14\.04\.6-server-amd64\.iso: /);
    assert.match(result.stdout, new RegExp(`cp ubuntu-14\\.04\\.6-server-amd64\\.iso ${env.BOXSMITH_CACHE}/iso/sha256-b17d7c1e`));
    assert.doesNotMatch(result.stdout + result.stderr, /^\s+at /m, 'no stack trace');
  });

  it('without root, the debian-12 base image fails at once, naming what is missing (run as nobody)', (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to become nobody');
    const dir = mkdtempSync(path.join(tmpdir(), 'boxsmith-nobody-'));
    try {
      chmodSync(dir, 0o777);
      const result = run('runuser', ['-u', 'nobody', '--', 'env', `HOME=${dir}`, `PATH=${process.env.PATH}`,
        `BOXSMITH_CACHE=${dir}/cache`, `BOXSMITH_BOXES=${dir}/boxes`, `BOXSMITH_WORK=${dir}/work`, `BOXSMITH_LOGS=${dir}/logs`, 'CI=true',
        process.execPath, '--import', 'tsx', CLI, 'build', 'debian-12', '--no-apt-cache', '--no-test'], { cwd: REPO_ROOT });
      assert.equal(result.status, 1, result.stdout + result.stderr);
      assert.match(result.stdout, /FAILED {2}debian-12 \(qemu\): cannot make the debian-12 base image on this host; missing:\n {2}- root \(debootstrap, chroot and mounting the image need it\)/);
      assert.match(result.stdout, /- loop devices \(\/dev\/loop-control\)/);
      assert.doesNotMatch(result.stdout + result.stderr, /^\s+at /m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad options are usage errors naming the option', () => {
    const { env } = sandbox();
    for (const [args, expected] of [
      [['standin', '--timeout', 'biuld=5m'], /--timeout: .*biuld/],
      [['standin', '--provider', 'hyperv'], /unknown provider "hyperv"/],
      [['standin', '--version', 'latest'], /version "latest" is not a Vagrant box version/],
      [['standin', '--parallel', '0'], /--parallel takes a whole number > 0/],
      [['debian-12', '--provider', 'virtualbox'], /debian-12 has no virtualbox build/],
      [['standin', '--compression', 'bzip2'], /^boxsmith: build: --compression takes gzip, zstd, xz, not "bzip2"$/m],
    ] as [string[], RegExp][]) {
      const result = build(env, args);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, expected);
    }
  });
});

describe('box compression (stand-in packer)', () => {
  it("the definition's box.compression, and --compression over it: the box is compressed so, and its record says so", async () => {
    const { env, boxDir } = sandbox();
    const definition = path.join(env.BOXSMITH_DEFINITIONS, 'standin.yaml');
    writeFileSync(definition, `${readFileSync(definition, 'utf8')}box:\n  compression: zstd\n`);
    for (const [version, args, expected] of [['7.0.0', [], 'zstd'], ['7.0.1', ['--compression', 'xz'], 'xz']] as const) {
      const result = build(env, ['standin', '--version', version, ...args]);
      assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
      const dir = boxDir('standin', version);
      const record = JSON.parse(readFileSync(path.join(dir, 'libvirt.json'), 'utf8'));
      assert.equal(record.compression, expected);
      const inspected = await inspectBox(path.join(dir, 'libvirt.box'), 'libvirt');
      assert.equal(inspected.compression, expected);
      assert.equal(inspected.sha256, record.sha256);
    }
  });
});

/** The stand-in VBoxManage and vmrun (neither hypervisor can be installed here). */
const HYPERVISOR_TOOL = path.join(REPO_ROOT, 'test/fixtures/faults/hypervisor-tool');

/** A sandbox with `standin-hv`, a box for VirtualBox and VMware, and the stand-in VBoxManage and vmrun. */
function hypervisorSandbox() {
  const sandboxed = sandbox();
  const { root, env } = sandboxed;
  writeFileSync(
    path.join(env.BOXSMITH_DEFINITIONS, 'standin-hv.yaml'),
    readFileSync(path.join(env.BOXSMITH_DEFINITIONS, 'standin.yaml'), 'utf8').replace('box_name: standin-amd64', 'box_name: standin-hv-amd64').replace('providers: [qemu]', 'providers: [virtualbox, vmware]'),
  );
  const tools = path.join(root, 'tools');
  mkdirSync(tools);
  symlinkSync(HYPERVISOR_TOOL, path.join(tools, 'VBoxManage'));
  symlinkSync(HYPERVISOR_TOOL, path.join(tools, 'vmrun'));
  return {
    ...sandboxed,
    env: {
      ...env,
      BOXSMITH_VBOXMANAGE: path.join(tools, 'VBoxManage'),
      BOXSMITH_VMRUN: path.join(tools, 'vmrun'),
      STANDIN_TOOL_LOG: path.join(root, 'tool.log'),
      STANDIN_VBOX_HOME: path.join(root, 'virtualbox'),
    },
  };
}

describe('VirtualBox and VMware boxes packaged by boxsmith from the output directory (stand-in packer, VBoxManage and vmrun)', () => {
  const vm = 'standin-hv-amd64';
  for (const { provider, vagrantProvider, args, compression, entries } of [
    {
      provider: 'virtualbox',
      vagrantProvider: 'virtualbox',
      args: [],
      compression: 'gzip',
      entries: ['metadata.json', 'Vagrantfile', 'box.ovf', `${vm}-disk001.vmdk`],
    },
    {
      provider: 'vmware',
      vagrantProvider: 'vmware_desktop',
      args: ['--compression', 'zstd'],
      compression: 'zstd',
      // The .vmx first, then the builder's other kept files by name; its vmware.log is no part of the box.
      entries: ['metadata.json', 'Vagrantfile', `${vm}.vmx`, 'disk.vmdk', `${vm}.nvram`, `${vm}.vmsd`, `${vm}.vmxf`],
    },
  ]) {
    it(`stand-in packer: --provider ${provider}${args.length ? ` ${args.join(' ')}` : ''} gives a ${compression} ${vagrantProvider} box with ${entries.slice(2).join(', ')}, its sha256, and Debian's vagrant adds it`, async () => {
      const { env, boxDir } = hypervisorSandbox();
      const result = build(env, ['standin-hv', '--provider', provider, '--version', '1.0.0', ...args]);
      assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stdout, new RegExp(`ok {6}standin-hv \\(${provider}\\)`));
      const dir = boxDir('standin-hv', '1.0.0');
      const box = path.join(dir, `${vagrantProvider}.box`);
      assert.deepEqual(readdirSync(dir).sort(), ['box', 'box.sha256', 'json', 'packages.tsv'].map((suffix) => `${vagrantProvider}.${suffix}`));
      const check = run('sha256sum', ['-c', `${vagrantProvider}.box.sha256`], { cwd: dir });
      assert.equal(check.status, 0, check.stdout + check.stderr);

      const inspected = await inspectBox(box, vagrantProvider);
      assert.deepEqual(inspected.entries.map((entry) => entry.path), entries);
      assert.deepEqual(inspected.metadata, { provider: vagrantProvider });
      assert.equal(inspected.compression, compression);
      const record = JSON.parse(readFileSync(path.join(dir, `${vagrantProvider}.json`), 'utf8'));
      assert.equal(record.provider, vagrantProvider);
      assert.equal(record.compression, compression);
      assert.equal(record.sha256, inspected.sha256);
      assert.equal(record.sha256, readFileSync(`${box}.sha256`, 'utf8').split(' ')[0]);

      const vagrantfile = run('tar', ['-xOf', box, 'Vagrantfile']);
      assert.equal(vagrantfile.status, 0, vagrantfile.stderr);
      // The rendered Vagrantfile (libvirt's, VirtualBox's and VMware's settings), after VirtualBox's base MAC.
      assert.match(vagrantfile.stdout, /lv\.memory = 1024\n/);
      if (provider === 'virtualbox') assert.match(vagrantfile.stdout, /^Vagrant\.configure\("2"\) do \|config\|\n {2}config\.vm\.base_mac = "080027A1B2C3"\nend\n/m);
      else assert.doesNotMatch(vagrantfile.stdout, /base_mac/);
      const syntax = run('ruby', ['-c', '-e', vagrantfile.stdout]);
      assert.equal(syntax.status, 0, syntax.stderr);

      if (!VAGRANT) return;
      const home = tempDir('boxsmith-vagrant-');
      const added = await vagrant(['box', 'add', '--name', 't/x', '--provider', vagrantProvider, box], { home });
      assert.equal(added.code, 0, added.output);
      assert.match(added.output, new RegExp(`Successfully added box 't/x' \\(v0\\) for '${vagrantProvider}'`));
    });
  }

  it('stand-in packer: the build VM it made with the stand-in VBoxManage is gone after a successful VirtualBox build, and the box holds no .vdi', async () => {
    const { env, boxDir } = hypervisorSandbox();
    const result = build({ ...env, STANDIN_VM_NAME: vm }, ['standin-hv', '--provider', 'virtualbox', '--version', '1.0.0']);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.equal(readFileSync(path.join(env.STANDIN_VBOX_HOME, 'registered'), 'utf8'), '');
    const inspected = await inspectBox(path.join(boxDir('standin-hv', '1.0.0'), 'virtualbox.box'), 'virtualbox');
    assert.deepEqual(inspected.entries.map((entry) => entry.path), ['metadata.json', 'Vagrantfile', 'box.ovf', `${vm}-disk001.vmdk`]);
  });
});

describe('compression level (stand-in packer; boxsmith packages the QEMU box)', () => {
  it("with a stand-in packer: the definition's box.compression_level, --compression-level 1 over it, and none (gzip's 6): the record carries the level the box was written at", () => {
    const { env, boxDir } = sandbox();
    const definition = path.join(env.BOXSMITH_DEFINITIONS, 'standin.yaml');
    const original = readFileSync(definition, 'utf8');
    for (const [version, setting, args, level] of [
      ['8.0.0', '', [], 6],
      ['8.0.1', 'box:\n  compression_level: 9\n', [], 9],
      ['8.0.2', 'box:\n  compression_level: 9\n', ['--compression-level', '1'], 1],
    ] as const) {
      writeFileSync(definition, `${original}${setting}`);
      const result = build(env, ['standin', '--version', version, ...args]);
      assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
      const dir = boxDir('standin', version);
      const record = JSON.parse(readFileSync(path.join(dir, 'libvirt.json'), 'utf8'));
      assert.equal(record.compression, 'gzip');
      assert.equal(record.compression_level, level);
      assert.equal(record.compressor, 'bgzip');
      // bgzip writes the same bytes for the same input and level (whatever its threads), and other
      // bytes at another level: the box is its tar recompressed at exactly that level.
      const recompressed = execFileSync('bash', ['-o', 'pipefail', '-c', 'gzip -dc "$1" | bgzip -c -l "$2" | sha256sum', 'bash', path.join(dir, 'libvirt.box'), String(level)], { encoding: 'utf8' });
      assert.equal(recompressed.split(' ')[0], record.sha256, `${version}: the box is bgzip -l ${level} of its tar`);
    }
  });

  it('with a stand-in packer: --compression-level out of range for the compression in effect is a usage error before any build', () => {
    const { env, root } = sandbox();
    const result = build(env, ['standin', '--compression', 'xz', '--compression-level', '12']);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /^boxsmith: --compression-level: 12 is not an xz level \(0-9\); xz is the --compression given$/m);
    assert.doesNotMatch(result.stdout, /^run \S+: logs in/m, 'no run started');
    assert.ok(!existsSync(path.join(root, 'work')) || workFolders(root).length === 0, 'no build folder');
  });
});

describe('boxsmith nightly with a stand-in packer', () => {
  it('a box whose smoke test fails is not published; the report names the failure; exit 1', () => {
    const { env, root } = sandbox();
    const catalog = path.join(root, 'catalog');
    const reports = path.join(root, 'reports');
    // The stand-in's disk is a real qcow2 that boots nothing: vagrant up would wait for the guest's
    // address up to its boot timeout (15 minutes), so the smoke stage gets a short limit instead.
    const result = boxsmith(['nightly', '--box', 'standin', '--to', `static:${catalog}`, '--report-dir', reports, '--timeout', 'smoke=20s'], env);
    assert.equal(result.status, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /FAILED {2}standin \(qemu\): stage "smoke" timed out/);
    assert.ok(!existsSync(path.join(catalog, 'phusion')), 'nothing published');
    const report = JSON.parse(readFileSync(path.join(reports, 'latest', 'report.json'), 'utf8'));
    assert.deepEqual(report.cells.map((c: { box: string; status: string }) => [c.box, c.status]), [['standin', 'failed']]);
    assert.match(report.cells[0].reason, /^stage "smoke" timed out/);
    assert.deepEqual(report.cells[0].stages.find((s: { name: string }) => s.name === 'smoke').status, 'failed');
    assert.equal(report.cells[0].published, undefined);
    assert.equal(report.exit_code, 1);
  });
});

describe('progress lines', () => {
  it('a redrawn progress meter shows as its last state, short', () => {
    const meter = Array.from({ length: 300 }, (_, i) => `\u001b[KProgress: ${Math.floor(i / 3)}%`).join('');
    assert.equal(displayLine(`${meter}\u001b[K==> default: Creating image (snapshot of base box volume).`), '==> default: Creating image (snapshot of base box volume).');
    assert.equal(displayLine('x'.repeat(400)).length, 160);
    assert.equal(displayLine('==> qemu.box: Waiting for SSH'), '==> qemu.box: Waiting for SSH');
  });
});

describe('download progress', () => {
  it('is drawn as a bar with percent and MiB, or MiB alone when the size is unknown', () => {
    assert.equal(progressBar(265 * 1048576, 662 * 1048576), '[########------------]  40%  265 of 662 MiB');
    assert.equal(progressBar(662 * 1048576, 662 * 1048576), '[####################] 100%  662 of 662 MiB');
    assert.equal(progressBar(5 * 1048576, undefined), '5 MiB');
  });
});

describe('build output folders', () => {
  it('work folders are removed after a build unless --keep-work', () => {
    const { env, root } = sandbox();
    assert.equal(build(env, ['standin', '--version', '6.0.0']).status, 0);
    assert.deepEqual(workFolders(root), []);
    assert.equal(build(env, ['standin', '--version', '6.0.1', '--keep-work']).status, 0);
    assert.equal(workFolders(root).length, 1);
  });
});
