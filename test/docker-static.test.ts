// scripts/docker-static.sh's functions run for real (bash, sha256sum, tar, install) in temporary
// folders, on a stand-in .tgz shaped like Docker's static one (docker/docker, docker/dockerd, ...:
// small shell scripts, since Docker's own file cannot be fetched here); the init files it writes
// checked by the real tools (sh -n and shellcheck on the upstart job's scripts, systemd-analyze
// verify on the unit); and the whole script into a temporary root, with stand-ins for the guest's
// apt-get, groupadd, usermod and upstart's commands, which cannot run on this host.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { STANDIN_BINARIES, standinDockerTgz } from './docker-standin.ts';
import { REPO_ROOT, run, tempDir } from './helpers.ts';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'docker-static.sh');

/** Runs one of the script's functions with bash, the script sourced. */
function call(fn: string, ...args: string[]) {
  return run('bash', ['-c', `source "$1"; shift; ${fn} "$@"`, 'docker-static-test', SCRIPT, ...args]);
}

/** The body of `<stanza> script ... end script` in an upstart job. */
function upstartScript(job: string, stanza: string): string {
  const match = new RegExp(`^${stanza}\\n([\\s\\S]*?)^end script$`, 'm').exec(job);
  assert.ok(match, `the job has a "${stanza}" block`);
  return match[1]!;
}

describe('docker-static.sh on a stand-in Docker .tgz', () => {
  it('a .tgz whose sha256 is not the pin is refused, naming both', () => {
    const { file, sha256 } = standinDockerTgz();
    const wrong = 'f'.repeat(64);
    const result = call('verify_sha256', file, wrong);
    assert.notEqual(result.status, 0);
    assert.equal(
      result.stderr.trim(),
      `docker-static.sh: ${file} is not the pinned Docker .tgz (expected sha256 ${wrong}, it is ${sha256}): refused`,
    );
  });

  it('the pinned .tgz is accepted, and its binaries are installed executable into the folder given', () => {
    const { file, sha256 } = standinDockerTgz();
    assert.equal(call('verify_sha256', file, sha256).status, 0);
    const bindir = path.join(tempDir(), 'usr', 'local', 'bin');
    const result = call('install_binaries', file, bindir);
    assert.equal(result.status, 0, result.stderr);
    for (const name of STANDIN_BINARIES) {
      assert.equal(statSync(path.join(bindir, name)).mode & 0o777, 0o755, name);
    }
    assert.equal(run(path.join(bindir, 'dockerd'), []).stdout, 'stand-in dockerd\n');
  });

  it('a .tgz without docker/dockerd is not taken for Docker, and nothing is installed', () => {
    const { file } = standinDockerTgz(['docker', 'docker-runc']);
    const bindir = path.join(tempDir(), 'bin');
    const result = call('install_binaries', file, bindir);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /has no docker\/dockerd: it is not Docker's static binaries/);
    assert.equal(run('test', ['-e', bindir]).status, 1);
  });

  it('the upstart job: starts after the local filesystems and a network interface, respawns, mounts the cgroup hierarchies, runs dockerd with DOCKER_OPTS', () => {
    const job = path.join(tempDir(), 'docker.conf');
    assert.equal(call('write_upstart_job', job, '/usr/local/bin').status, 0);
    const text = readFileSync(job, 'utf8');
    assert.match(text, /^start on \(local-filesystems and net-device-up IFACE!=lo\)$/m);
    assert.match(text, /^respawn$/m);
    const preStart = upstartScript(text, 'pre-start script');
    assert.match(preStart, /mount -t tmpfs -o uid=0,gid=0,mode=0755 cgroup \/sys\/fs\/cgroup/);
    assert.match(preStart, /awk '!\/\^#\/ \{ if \(\$4 == 1\) print \$1 \}' \/proc\/cgroups \| while read -r sys; do/);
    assert.match(preStart, /mount -n -t cgroup -o "\$sys" cgroup "\$sys"/);
    const main = upstartScript(text, 'script');
    assert.match(main, /\. \/etc\/default\/docker/);
    assert.match(main, /exec \/usr\/local\/bin\/dockerd \$DOCKER_OPTS$/m);
    // upstart runs each block with /bin/sh -e.
    for (const stanza of ['pre-start script', 'script', 'post-start script']) {
      const body = path.join(tempDir(), 'body.sh');
      writeFileSync(body, `#!/bin/sh -e\n${upstartScript(text, stanza)}`);
      assert.equal(run('sh', ['-n', body]).status, 0, stanza);
      // SC1091: /etc/default/docker is the guest's; SC2086: DOCKER_OPTS is split into words on purpose.
      const checked = run('shellcheck', ['--shell=sh', '--severity=style', '--exclude=SC1091,SC2086', body]);
      assert.equal(checked.status, 0, `${stanza}: ${checked.stdout}`);
    }
  });

  it('the systemd unit passes systemd-analyze verify and reads /etc/default/docker', () => {
    const bindir = tempDir();
    writeFileSync(path.join(bindir, 'dockerd'), '#!/bin/sh\n');
    chmodSync(path.join(bindir, 'dockerd'), 0o755);
    const unit = path.join(tempDir(), 'docker.service');
    assert.equal(call('write_systemd_unit', unit, bindir).status, 0);
    const text = readFileSync(unit, 'utf8');
    assert.match(text, new RegExp(`^ExecStart=${bindir}/dockerd \\$DOCKER_OPTS$`, 'm'));
    assert.match(text, /^EnvironmentFile=-\/etc\/default\/docker$/m);
    const verified = run('systemd-analyze', ['verify', unit]);
    assert.equal(verified.status, 0, verified.stderr);
  });

  it('/etc/default/docker is written once: an existing file is kept', () => {
    const file = path.join(tempDir(), 'docker');
    assert.equal(call('write_defaults', file).status, 0);
    assert.match(readFileSync(file, 'utf8'), /^DOCKER_OPTS=""$/m);
    writeFileSync(file, 'DOCKER_OPTS="--storage-driver=vfs"\n');
    assert.equal(call('write_defaults', file).status, 0);
    assert.equal(readFileSync(file, 'utf8'), 'DOCKER_OPTS="--storage-driver=vfs"\n');
  });

  it('shellcheck passes the script', () => {
    const result = run('shellcheck', ['--severity=style', SCRIPT]);
    assert.equal(result.status, 0, result.stdout);
  });
});

describe('docker-static.sh as Packer runs it, into a temporary root, with stand-ins for the guest\'s apt-get, user tools and upstart', () => {
  /** Runs the script's main with stand-in commands that log their arguments; the root and the log. */
  function runMain(tgz: { file: string; sha256: string }, pin = tgz.sha256, init: 'upstart' | 'systemd' = 'upstart') {
    const root = tempDir();
    const dirs = init === 'upstart' ? ['etc/default', 'etc/init'] : ['etc/default', 'etc/systemd/system', 'run/systemd/system'];
    for (const dir of dirs) mkdirSync(path.join(root, dir), { recursive: true });
    const bin = tempDir();
    const calls = path.join(bin, 'calls.log');
    writeFileSync(calls, '');
    for (const command of ['apt-get', 'groupadd', 'usermod', 'initctl', 'start', 'stop', 'status', 'systemctl']) {
      writeFileSync(path.join(bin, command), `#!/bin/sh\necho "${command} $*" >> '${calls}'\n`, { mode: 0o755 });
    }
    // No docker group yet.
    writeFileSync(path.join(bin, 'getent'), '#!/bin/sh\nexit 2\n', { mode: 0o755 });
    const uploaded = path.join(tempDir(), 'boxsmith-docker-static.tgz');
    writeFileSync(uploaded, readFileSync(tgz.file));
    const result = run('bash', [SCRIPT], {
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        BOXSMITH_DOCKER_ROOT: root,
        BOXSMITH_DOCKER_STATIC_TGZ: uploaded,
        BOXSMITH_DOCKER_STATIC_VERSION: '18.06.3-ce',
        BOXSMITH_DOCKER_STATIC_SHA256: pin,
        BOXSMITH_DOCKER_PACKAGES: 'iptables aufs-tools xz-utils',
        BOXSMITH_VAGRANT_USER: 'vagrant',
      },
    });
    return { result, root, uploaded, calls: readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean) };
  }

  it('installs the packages, the binaries, the docker group with vagrant in it, the options file and the upstart job, starts it and checks the version', () => {
    const { result, root, uploaded, calls } = runMain(standinDockerTgz());
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(calls, [
      'apt-get install -y -q --no-install-recommends iptables aufs-tools xz-utils',
      'groupadd --system docker',
      'usermod -a -G docker vagrant',
      'initctl reload-configuration',
      'stop docker',
      'start docker',
      'status docker',
    ]);
    for (const name of STANDIN_BINARIES) assert.equal(statSync(path.join(root, 'usr/local/bin', name)).mode & 0o777, 0o755, name);
    assert.equal(run('test', ['-e', uploaded]).status, 1, 'the uploaded .tgz is removed');
    assert.match(readFileSync(path.join(root, 'etc/init/docker.conf'), 'utf8'), new RegExp(`exec ${root}/usr/local/bin/dockerd \\$DOCKER_OPTS`));
    assert.match(readFileSync(path.join(root, 'etc/default/docker'), 'utf8'), /^DOCKER_OPTS=""$/m);
    assert.match(result.stdout, /^Storage Driver: aufs$/m, 'the storage driver Docker chose is in the build log');
  });

  it('a .tgz that is not the pin: nothing is installed and no job written', () => {
    const { result, root, calls } = runMain(standinDockerTgz(), 'e'.repeat(64));
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /is not the pinned Docker \.tgz \(expected sha256 e{64}, it is [0-9a-f]{64}\): refused/);
    assert.equal(run('test', ['-e', path.join(root, 'usr/local/bin')]).status, 1);
    assert.equal(run('test', ['-e', path.join(root, 'etc/init/docker.conf')]).status, 1);
    assert.ok(!calls.some((call) => call.startsWith('start')));
  });

  it('on systemd: the unit instead of the upstart job, enabled and started', () => {
    const { result, root, calls } = runMain(standinDockerTgz(), undefined, 'systemd');
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(calls.slice(3), [
      'systemctl daemon-reload',
      'systemctl enable docker.service',
      'systemctl restart docker.service',
      'systemctl is-active docker.service',
    ]);
    assert.match(readFileSync(path.join(root, 'etc/systemd/system/docker.service'), 'utf8'), new RegExp(`^ExecStart=${root}/usr/local/bin/dockerd \\$DOCKER_OPTS$`, 'm'));
    assert.equal(run('test', ['-e', path.join(root, 'etc/init/docker.conf')]).status, 1);
  });

  it('a daemon that says another version than the pin fails the build', () => {
    const { result } = runMain(standinDockerTgz(undefined, '17.03.2-ce'));
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /the daemon says it is Docker 17\.03\.2-ce, not the pinned 18\.06\.3-ce/);
  });
});
