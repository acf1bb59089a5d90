// Every command, given a bad command line or a bad environment, ends with a few plain lines naming
// what is wrong and a non-zero exit, never a stack trace, and before any work starts: the programs
// boxsmith runs (packer, vagrant, qemu, debootstrap, apt-cacher-ng, virsh) are traps on PATH that
// leave a mark when run, and no case may leave one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CLI, REPO_ROOT, tempDir } from './helpers.ts';

const STACK_FRAME = /^\s+at .*:\d+/m;
const MAX_STDERR_LINES = 4;

const root = tempDir('boxsmith-cli-errors-');
const trapMarks = path.join(root, 'trap-marks');
const trapBin = path.join(root, 'bin');
mkdirSync(trapMarks);
mkdirSync(trapBin);
for (const program of ['packer', 'vagrant', 'qemu-system-x86_64', 'qemu-img', 'debootstrap', 'apt-cacher-ng', 'virsh', 'VBoxManage', 'vmrun']) {
  writeFileSync(path.join(trapBin, program), `#!/bin/sh\ntouch "${trapMarks}/${program}"\nexit 1\n`);
  chmodSync(path.join(trapBin, program), 0o755);
}
const aFile = path.join(root, 'a-file');
writeFileSync(aFile, 'not a folder\n');
const underAFile = path.join(aFile, 'below');
const missing = path.join(root, 'missing');
const catalog = path.join(root, 'catalog');
mkdirSync(catalog);

/** The environment of every case: outputs in the temporary folder, the traps first on PATH. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('BOXSMITH_') || name === 'INIT_CWD') delete env[name];
  return {
    ...env,
    PATH: `${trapBin}:${process.env.PATH}`,
    BOXSMITH_CACHE: path.join(root, 'cache'),
    BOXSMITH_BOXES: path.join(root, 'boxes'),
    BOXSMITH_WORK: path.join(root, 'work'),
    BOXSMITH_LOGS: path.join(root, 'logs'),
    BOXSMITH_REPORTS: path.join(root, 'reports'),
  };
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Case {
  args: string[];
  /** Variables to set; undefined unsets one. */
  env?: Record<string, string | undefined>;
  message: RegExp;
  code?: number;
}

const CASES: Case[] = [
  // the command itself
  { args: ['frob'], message: /unknown command "frob"/ },
  { args: ['--frob'], message: /unknown command "--frob"/ },
  // list
  { args: ['list', 'extra'], message: /list takes no arguments \(got 1: extra\)/ },
  { args: ['list', '--bogus'], message: /list: unknown option '--bogus'/ },
  { args: ['list'], env: { BOXSMITH_DEFINITIONS: missing }, message: /BOXSMITH_DEFINITIONS=.*missing: no such folder/, code: 1 },
  { args: ['list'], env: { BOXSMITH_DEFINITIONS: aFile }, message: /BOXSMITH_DEFINITIONS=.*a-file: not a folder/, code: 1 },
  // render
  { args: ['render'], message: /render takes one box name \(got none\)/ },
  { args: ['render', 'debian-12', 'ubuntu-14.04'], message: /render takes one box name \(got 2/ },
  { args: ['render', 'debian-12', '--out'], message: /render: --out needs a value/ },
  { args: ['render', 'debian-12', '--packer-version', 'new'], message: /render: --packer-version: cannot read a Packer version from "new"/ },
  { args: ['render', 'no-such-box'], message: /unknown box "no-such-box"/ },
  { args: ['render', '../etc/passwd'], message: /unknown box "\.\.\/etc\/passwd"/ },
  { args: ['render', 'debian-12', '--out', path.join(root, 'out')], env: { BOXSMITH_PACKER: path.join(root, 'no-packer') }, message: /BOXSMITH_PACKER=.*no-packer: no such program/, code: 1 },
  { args: ['render', 'debian-12', '--packer-version', '1.11.0', '--out', underAFile], message: /--out=.*a-file\/below: cannot write there \(.*a-file is a file, in the way\)/, code: 1 },
  // build
  { args: ['build'], message: /build takes one or more box names/ },
  { args: ['build', 'debian-12', '--parallel', '0'], message: /build: --parallel takes a whole number > 0, not "0"/ },
  { args: ['build', 'debian-12', '--parallel', '-1'], message: /build: --parallel needs a value; one that starts with "-" is written --parallel=VALUE/ },
  { args: ['build', 'debian-12', '--parallel', '1.5'], message: /--parallel takes a whole number > 0, not "1\.5"/ },
  { args: ['build', 'debian-12', '--timeout', 'build=90'], message: /build: --timeout: .*"90" has no unit/ },
  { args: ['build', 'debian-12', '--grace', '10'], message: /build: --grace: .*"10" has no unit/ },
  { args: ['build', 'debian-12', '--version', 'latest'], message: /--version: version "latest" is not a Vagrant box version/ },
  { args: ['build', 'debian-12', '--provider', 'hyperv'], message: /--provider: unknown provider "hyperv"/ },
  { args: ['build', 'debian-12', '--apt-cache-port', '70000'], message: /--apt-cache-port takes a port from 1 to 65535, not "70000"/ },
  { args: ['build', 'debian-12', '--no-test=yes'], message: /build: --no-test takes no value/ },
  { args: ['build', 'debian-12', '--docker-image', ''], message: /--docker-image needs a value/ },
  { args: ['build', 'debian-12', '--compression-level', 'fast'], message: /^boxsmith: build: --compression-level takes a compression level \(gzip 1-9, zstd 1-19, xz 0-9\), not "fast"$/m },
  { args: ['build', 'debian-12', '--compression-level', '12'], message: /^boxsmith: --compression-level: 12 is not a gzip level \(1-9\); gzip is debian-12's box\.compression$/m },
  { args: ['build', 'debian-12', '--compression', 'zstd', '--compression-level', '0'], message: /^boxsmith: --compression-level: 0 is not a zstd level \(1-19\); zstd is the --compression given$/m },
  { args: ['build', 'no-such-box'], message: /unknown box "no-such-box"/ },
  { args: ['build', 'debian-12'], env: { HOME: undefined }, message: /HOME is not set/, code: 1 },
  { args: ['build', 'debian-12'], env: { BOXSMITH_PACKER: path.join(root, 'no-packer') }, message: /BOXSMITH_PACKER=.*no-packer: no such program/, code: 1 },
  { args: ['build', 'debian-12'], env: { BOXSMITH_VAGRANT: 'no-such-vagrant' }, message: /BOXSMITH_VAGRANT=no-such-vagrant: no such program .*on PATH/, code: 1 },
  { args: ['build', 'debian-12', '--no-test'], env: { BOXSMITH_QEMU: path.join(root, 'no-qemu') }, message: /nothing to build: qemu .*no-qemu.*BOXSMITH_QEMU/, code: 1 },
  { args: ['build', 'debian-12'], env: { BOXSMITH_LOGS: underAFile }, message: /BOXSMITH_LOGS=.*a-file\/below: cannot write there \(.*a-file is a file, in the way\)/, code: 1 },
  { args: ['build', 'debian-12'], env: { BOXSMITH_BOXES: underAFile }, message: /BOXSMITH_BOXES=.*: cannot write there/, code: 1 },
  { args: ['build', 'debian-12'], env: { BOXSMITH_WORK: aFile }, message: /BOXSMITH_WORK=.*a-file: cannot write there/, code: 1 },
  { args: ['build', 'debian-12'], env: { BOXSMITH_CACHE: underAFile }, message: /BOXSMITH_CACHE=.*: cannot write there/, code: 1 },
  // test
  { args: ['test'], message: /test takes one box name \(got none\)/ },
  { args: ['test', 'debian-12', '--version', 'latest'], message: /test: --version: version "latest" is not a Vagrant box version/ },
  { args: ['test', 'debian-12', '--provider', 'hyperv'], message: /unknown provider "hyperv"/ },
  { args: ['test', 'no-such-box'], message: /unknown box "no-such-box"/ },
  { args: ['test', 'debian-12'], message: /no built box of phusion\/debian-12-amd64 to test/, code: 1 },
  { args: ['test', 'debian-12'], env: { BOXSMITH_VAGRANT: path.join(root, 'no-vagrant') }, message: /BOXSMITH_VAGRANT=.*no-vagrant: no such program/, code: 1 },
  { args: ['test', 'debian-12'], env: { HOME: undefined }, message: /HOME is not set/, code: 1 },
  { args: ['test', 'debian-12'], env: { BOXSMITH_LOGS: underAFile }, message: /BOXSMITH_LOGS=.*: cannot write there/, code: 1 },
  // publish
  { args: ['publish', 'debian-12'], message: /publish needs --to/ },
  { args: ['publish', '--to', 'vagrant-cloud'], message: /publish takes one box name \(got none\)/ },
  { args: ['publish', 'debian-12', 'ubuntu-14.04', '--to', 'vagrant-cloud'], message: /publish takes one box name \(got 2/ },
  { args: ['publish', 'debian-12', '--to', 'ftp:somewhere'], message: /publish: --to: unknown target "ftp:somewhere"/ },
  { args: ['publish', 'debian-12', '--to', 'static:'], message: /--to static needs a directory/ },
  { args: ['publish', 'debian-12', '--to', `static:${catalog},base-url=nonsense`], message: /base-url "nonsense" is not a URL/ },
  { args: ['publish', 'debian-12', '--to', 'vagrant-cloud:bad/owner'], message: /"bad\/owner" is not a user or organization name/ },
  { args: ['publish', 'debian-12', '--to', 'vagrant-cloud', '--keep', '2'], message: /--keep applies to static and rclone targets only/ },
  { args: ['publish', 'debian-12', '--to', 'rclone:remote:boxes'], message: /--to rclone needs base-url=URL/ },
  { args: ['publish', 'debian-12', '--to', 'rclone::sftp,host=h:boxes,base-url=ftp://x'], message: /base-url "ftp:\/\/x" must be an http, https or file URL/ },
  { args: ['mirror'], message: /mirror takes one box name or catalog URL \(got none\)/ },
  { args: ['mirror', 'phusion/ubuntu-14.04-amd64'], message: /mirror needs --to/ },
  { args: ['mirror', 'phusion/ubuntu-14.04-amd64', '--to', 'hcp'], message: /mirror --to takes a catalog tree/ },
  { args: ['publish', 'debian-12', '--to', `static:${catalog}`, '--keep', 'zero'], message: /publish: --keep takes a whole number > 0, not "zero"/ },
  { args: ['publish', 'debian-12', '--to', `static:${catalog}`, '--version', '1.0 beta'], message: /--version: version "1\.0 beta" is not a Vagrant box version/ },
  { args: ['publish', 'debian-12', '--to', `static:${underAFile}`], message: /--to static:.*a-file\/below: cannot write there \(.*a-file is a file, in the way\)/, code: 1 },
  { args: ['publish', 'no-such-box', '--to', `static:${catalog}`], message: /unknown box "no-such-box"/ },
  // serve
  { args: ['serve', '--port', '70000'], message: /serve: --port takes a port from 1 to 65535, not "70000"/ },
  { args: ['serve', '--port', 'http'], message: /--port takes a port/ },
  { args: ['serve', catalog, catalog], message: /serve takes at most one folder \(got 2/ },
  { args: ['serve', missing], message: /missing is not a folder: publish into it first/, code: 1 },
  { args: ['serve'], env: { BOXSMITH_CATALOG: missing }, message: /missing \(BOXSMITH_CATALOG\) is not a folder/, code: 1 },
  // nginx-conf
  { args: ['nginx-conf'], message: /nginx-conf takes one folder \(got none\)/ },
  { args: ['nginx-conf', catalog, '--port', '0'], message: /nginx-conf: --port takes a port from 1 to 65535, not "0"/ },
  { args: ['nginx-conf', missing], message: /missing is not a folder: publish into it first/, code: 1 },
  // checksums
  { args: ['checksums', 'no-such-box'], message: /unknown box "no-such-box"/ },
  { args: ['checksums', '--refresh=yes'], message: /checksums: --refresh takes no value/ },
  { args: ['checksums', '--bogus'], message: /checksums: unknown option '--bogus'/ },
  { args: ['checksums'], env: { BOXSMITH_DEFINITIONS: missing }, message: /BOXSMITH_DEFINITIONS=.*: no such folder/, code: 1 },
  // nightly
  { args: ['nightly', 'debian-12'], message: /nightly takes no box names \(use --box B\) \(got 1: debian-12\)/ },
  { args: ['nightly', '--to', 'ftp:x'], message: /nightly: --to: unknown target "ftp:x"/ },
  { args: ['nightly', '--timeout', 'build'], message: /nightly: --timeout: .*expected STAGE=DURATION/ },
  { args: ['nightly', '--timeout', 'build=0s'], message: /--timeout: .*greater than zero/ },
  { args: ['nightly', '--parallel', 'two'], message: /nightly: --parallel takes a whole number > 0, not "two"/ },
  { args: ['nightly', '--keep', '0', '--to', `static:${catalog}`], message: /nightly: --keep takes a whole number > 0, not "0"/ },
  { args: ['nightly', '--keep', '2'], message: /--keep applies to a static or rclone --to target only/ },
  { args: ['nightly', '--dry-run'], message: /--dry-run .* needs --to/ },
  { args: ['nightly', '--box', 'no-such-box'], message: /unknown box "no-such-box"/ },
  { args: ['nightly', '--box', 'debian-12'], env: { HOME: undefined }, message: /HOME is not set/, code: 1 },
  { args: ['nightly', '--box', 'debian-12'], env: { BOXSMITH_PACKER: path.join(root, 'no-packer') }, message: /BOXSMITH_PACKER=.*: no such program/, code: 1 },
  { args: ['nightly', '--box', 'debian-12'], env: { BOXSMITH_REPORTS: underAFile }, message: /BOXSMITH_REPORTS=.*: cannot write there/, code: 1 },
  { args: ['nightly', '--box', 'debian-12', '--report-dir', underAFile], message: /--report-dir=.*: cannot write there/, code: 1 },
  { args: ['nightly'], env: { BOXSMITH_DEFINITIONS: missing }, message: /BOXSMITH_DEFINITIONS=.*: no such folder/, code: 1 },
  { args: ['nightly', '--cell', 'debian-12'], message: /nightly: --cell takes BOX:PROVIDER \(provider one of virtualbox, vmware, qemu\), not "debian-12"/ },
  { args: ['nightly', '--cell', 'debian-12:vmware'], message: /nightly: --cell debian-12:vmware: debian-12 has no vmware build \(its providers: qemu\)/ },
  { args: ['nightly', '--cell', 'no-such-box:qemu'], message: /unknown box "no-such-box"/ },
  { args: ['nightly', '--json'], message: /nightly: --json and --for-runners go with --plan/ },
  { args: ['nightly', '--version', 'tonight'], message: /nightly: --version: version "tonight" is not a Vagrant box version/ },
  // report-merge
  { args: ['report-merge'], message: /report-merge takes one or more part folders \(got none\)/ },
  { args: ['report-merge', missing], message: /missing has no report\.json \(nor latest\/report\.json\): not a nightly's report folder/, code: 1 },
  { args: ['report-merge', aFile], message: /a-file has no report\.json/, code: 1 },
  { args: ['report-merge', catalog, '--dry-run'], message: /report-merge: --dry-run is a dry run of publishing, so it needs --to/ },
];

describe('every command refuses bad input in a few lines, without a stack trace and before any work', { concurrency: 4 }, () => {
  for (const { args, env = {}, message, code = 2 } of CASES) {
    const shownEnv = Object.entries(env).map(([name, value]) => (value === undefined ? `-${name} ` : `${name}=${path.basename(value)} `)).join('');
    it(`${shownEnv}boxsmith ${args.map((arg) => arg.replace(root, '$TMP')).join(' ')}`, async () => {
      const environment = baseEnv();
      for (const [name, value] of Object.entries(env)) {
        if (value === undefined) delete environment[name];
        else environment[name] = value;
      }
      const result = await runCli(args, environment);
      const output = result.stdout + result.stderr;
      assert.equal(result.code, code, output);
      assert.match(result.stderr, message);
      assert.match(result.stderr, /^boxsmith: /);
      assert.doesNotMatch(output, STACK_FRAME, 'no stack frame');
      assert.doesNotMatch(output, /node:internal/);
      assert.ok(result.stderr.trimEnd().split('\n').length <= MAX_STDERR_LINES, `at most ${MAX_STDERR_LINES} lines:\n${result.stderr}`);
      assert.deepEqual(readdirSync(trapMarks), [], 'no program was run');
    });
  }
});

describe('help', () => {
  const commands = ['list', 'render', 'build', 'test', 'publish', 'serve', 'nginx-conf', 'checksums', 'nightly', 'report-merge'];
  it('boxsmith --help lists every command; no command at all is a usage error', async () => {
    const help = await runCli(['--help'], baseEnv());
    assert.equal(help.code, 0, help.stderr);
    for (const command of commands) assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'));
    const none = await runCli([], baseEnv());
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^usage: boxsmith <command>/);
  });

  it('boxsmith <command> --help shows every option of the command, as the README documents them', async () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    await Promise.all(
      commands.map(async (command) => {
        const result = await runCli([command, '--help'], baseEnv());
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, new RegExp(`^usage: boxsmith ${command}\\b`));
        // Every option the README's command table gives for the command is in its help.
        const script = { list: 'list', render: 'render', build: 'build:box', test: 'test:box', publish: 'publish:box', mirror: 'boxsmith -- mirror', serve: 'serve:boxes', 'nginx-conf': 'boxsmith -- nginx-conf', checksums: 'checksums', nightly: 'nightly', 'report-merge': 'report:merge' }[command]!;
        const row = readme.split('\n').find((line) => line.startsWith(`| \`npm run ${script}`)) ?? '';
        for (const option of (row.split('|')[1] ?? '').match(/--[a-z-]+/g) ?? []) assert.match(result.stdout, new RegExp(`${option}\\b`), `${command} --help has ${option}`);
      }),
    );
  });
});

describe('internal errors', () => {
  const fixtures = path.join(REPO_ROOT, 'test/fixtures/cli');
  function runWithFault(fault: string, args: string[], logs: string) {
    return new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--import', path.join(fixtures, fault), CLI, ...args], {
        cwd: REPO_ROOT,
        env: { ...baseEnv(), BOXSMITH_LOGS: logs },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stderr }));
    });
  }
  function assertReported(result: { code: number | null; stderr: string }, message: string, logs: string): void {
    assert.equal(result.code, 70, result.stderr);
    const match = new RegExp(`^boxsmith: internal error: ${message} \\(details written to (.+)\\)\\n$`).exec(result.stderr);
    assert.ok(match, `one line: ${result.stderr}`);
    const details = match[1]!;
    assert.equal(path.dirname(details), logs);
    assert.match(readFileSync(details, 'utf8'), new RegExp(`${message}\\n\\s+at `), 'the details file has the stack');
  }

  it('a bug (a fault injected by a preloaded module) prints one line and writes the stack into the logs folder; exit 70', async () => {
    const logs = path.join(tempDir(), 'logs-not-made-yet');
    assertReported(await runWithFault('fault-in-readdir.ts', ['list'], logs), 'simulated bug: readdirSync broke', logs);
  });

  it('an error thrown where no caller catches it (a timer, injected) ends the same way', async () => {
    const logs = tempDir();
    assertReported(await runWithFault('fault-in-timer.ts', ['serve', catalog, '--port', '0'], logs), 'simulated bug in a timer', logs);
  });

  it('without a writable logs folder the details go to the temporary folder', async () => {
    const tmp = tempDir();
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--import', path.join(fixtures, 'fault-in-readdir.ts'), CLI, 'list'], {
        cwd: REPO_ROOT,
        env: { ...baseEnv(), BOXSMITH_LOGS: underAFile, TMPDIR: tmp },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('close', (code) => resolve({ code, stderr }));
    });
    assertReported(result, 'simulated bug: readdirSync broke', tmp);
    assert.ok(!existsSync(underAFile));
  });
});
