// Registry secrets stay in boxsmith's own process: every way it starts a child (supervised stage,
// captured helper, shared host daemon, watchdog) gives the child an environment without them, read
// back from the running child's /proc/PID/environ.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCaptured } from '../../src/exec/captured.ts';
import { childEnvironment } from '../../src/exec/child-env.ts';
import { spawnHostDaemon } from '../../src/exec/shared-daemon.ts';
import { runSupervised } from '../../src/exec/supervise.ts';
import { Watchdog } from '../../src/exec/watchdog.ts';

const SECRETS = {
  VAGRANT_CLOUD_TOKEN: 'vc-token-child-env-0123456789',
  HCP_CLIENT_ID: 'hcp-id-child-env-0123456789',
  HCP_CLIENT_SECRET: 'hcp-secret-child-env-0123456789',
  ATLAS_TOKEN: 'atlas-token-child-env-0123456789',
};

function environOf(pid: number): string {
  return readFileSync(`/proc/${pid}/environ`, 'utf8');
}

function assertClean(environ: string, who: string): void {
  assert.match(environ, /(^|\0)PATH=/, `${who}: environment was read`);
  for (const [name, value] of Object.entries(SECRETS)) {
    assert.ok(!environ.includes(value), `${who} has ${name}`);
    assert.ok(!environ.split('\0').some((entry) => entry.startsWith(`${name}=`)), `${who} has ${name}`);
  }
}

describe('children never inherit the registry secrets', () => {
  let dir: string;
  const saved = { ...process.env };
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'boxsmith-child-env-'));
    Object.assign(process.env, SECRETS);
  });
  after(() => {
    for (const name of Object.keys(SECRETS)) delete process.env[name];
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
  });

  it('childEnvironment drops them and keeps the rest', () => {
    const env = childEnvironment({ ...SECRETS, HCP_ORGANIZATION_ID: 'x', PATH: '/bin', HOME: '/root' });
    assert.deepEqual(env, { PATH: '/bin', HOME: '/root' });
  });

  it('a supervised stage (Packer, QEMU, vagrant)', async () => {
    const result = await runSupervised({
      stage: 'build',
      command: 'sh',
      args: ['-c', 'cat /proc/$$/environ'],
      logFile: path.join(dir, 'supervised.log'),
      diagnosticsDir: dir,
      timeoutMs: 30_000,
    });
    assert.equal(result.exitCode, 0);
    assertClean(readFileSync(path.join(dir, 'supervised.log'), 'utf8'), 'supervised child');
  });

  it('a captured helper (gdb, iptables), even when given process.env explicitly', async () => {
    for (const env of [undefined, process.env]) {
      const result = await runCaptured('sh', ['-c', 'cat /proc/$$/environ'], { timeoutMs: 30_000, ...(env ? { env } : {}) });
      assertClean(result.stdout, 'captured child');
    }
  });

  it('a shared host daemon (apt-cacher-ng, libvirtd)', async () => {
    const daemon = spawnHostDaemon('sleep', ['30'], path.join(dir, 'daemon.log'));
    try {
      assertClean(environOf(daemon.pid), 'host daemon');
    } finally {
      process.kill(daemon.pid, 'SIGKILL');
    }
  });

  it('the watchdog', async () => {
    const watchdog = await Watchdog.start({ logDir: path.join(dir, 'watchdog'), graceMs: 200 });
    try {
      assertClean(environOf(watchdog.pid), 'watchdog');
    } finally {
      await watchdog.goodbye();
    }
  });
});
