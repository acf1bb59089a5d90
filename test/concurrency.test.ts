// Runs side by side on one host: the package cache shared through leases (the real apt-cacher-ng,
// held by real processes with their watchdogs), the generic lease mechanism, the build lock.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { AptCache, accepts } from '../src/build/apt-cache.ts';
import { buildLockPath } from '../src/build/build-lock.ts';
import { HostSetupError } from '../src/exec/errors.ts';
import { isAlive, readCmdline, sleep } from '../src/exec/proc.ts';
import { leaseSharedDaemon, pruneLeases, readRecord, spawnHostDaemon } from '../src/exec/shared-daemon.ts';
import { REPO_ROOT, tempDir } from './helpers.ts';

const HOLDER = path.join(REPO_ROOT, 'test/fixtures/concurrency/lease-holder.ts');
const hasAptCacherNg = ['/usr/sbin/apt-cacher-ng', '/usr/bin/apt-cacher-ng'].some(existsSync);

interface Holder {
  child: ChildProcess;
  /** The next JSON line the holder prints. */
  next: () => Promise<Record<string, unknown>>;
  release: () => Promise<void>;
}

const started: ChildProcess[] = [];
after(() => {
  for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
});

function startHolder(args: string[]): Holder {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(child);
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else lines.push(line);
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`holder ${args.join(' ')} exited (${code}) before printing`));
      child.once('exit', onExit);
      const take = (line: string) => {
        child.off('exit', onExit);
        resolve(JSON.parse(line) as Record<string, unknown>);
      };
      const line = lines.shift();
      if (line !== undefined) take(line);
      else waiters.push(take);
    });
  const release = async () => {
    child.stdin!.write('release\n');
    assert.deepEqual(await next(), { released: true });
  };
  return { child, next, release };
}

/** Polls `condition` up to `ms`; returns whether it became true. */
async function eventually(condition: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await sleep(100);
  }
  return condition();
}

/** apt-cacher-ng processes serving this cache folder's configuration. */
function daemonsOf(cacheDir: string): number[] {
  const config = path.join(cacheDir, 'apt-cacher-ng', 'config');
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => isAlive(pid) && (readCmdline(pid) ?? []).includes(config));
}

function deadPid(): number {
  const child = spawnSync('true');
  return child.pid!;
}

describe('the package cache shared by runs (real apt-cacher-ng)', { skip: !hasAptCacherNg && 'apt-cacher-ng is not installed' }, () => {
  test('two runs share one daemon; it survives the SIGKILL of the first and stops with the second', async () => {
    const cacheDir = tempDir();
    const first = startHolder(['apt-cache', cacheDir, path.join(cacheDir, 'logs-first')]);
    const a = await first.next();
    const second = startHolder(['apt-cache', cacheDir, path.join(cacheDir, 'logs-second')]);
    const b = await second.next();
    assert.equal(b.port, a.port, 'the second run uses the first run\'s port');
    assert.equal(b.pid, a.pid, 'the second run uses the first run\'s daemon');
    assert.deepEqual(daemonsOf(cacheDir), [a.pid], 'one daemon for the cache folder');
    assert.ok(await accepts(a.port as number), 'the daemon accepts connections');
    const config = readFileSync(path.join(cacheDir, 'apt-cacher-ng', 'config', 'acng.conf'), 'utf8');
    assert.match(config, new RegExp(`SocketPath: ${path.join(cacheDir, 'apt-cacher-ng', 'socket')}`));

    first.child.kill('SIGKILL');
    const firstWatchdogLog = path.join(cacheDir, 'logs-first', 'watchdog.log');
    assert.ok(
      await eventually(() => existsSync(firstWatchdogLog) && /released lease/.test(readFileSync(firstWatchdogLog, 'utf8'))),
      "the first run's watchdog released its lease",
    );
    assert.match(readFileSync(firstWatchdogLog, 'utf8'), /other runs still hold it/);
    assert.ok(isAlive(a.pid as number), 'the daemon outlives the run that started it');
    assert.ok(await accepts(a.port as number));

    await second.release();
    assert.ok(await eventually(() => !isAlive(a.pid as number)), 'the last release stops the daemon');
    assert.equal(await readRecord(path.join(cacheDir, 'apt-cacher-ng')), undefined);
  });

  test('the SIGKILL of the last holder stops the daemon through its watchdog', async () => {
    const cacheDir = tempDir();
    const only = startHolder(['apt-cache', cacheDir, path.join(cacheDir, 'logs')]);
    const { pid } = await only.next();
    assert.ok(isAlive(pid as number));
    only.child.kill('SIGKILL');
    assert.ok(await eventually(() => !isAlive(pid as number)), 'the daemon is stopped within 10 s');
    const log = path.join(cacheDir, 'logs', 'watchdog.log');
    assert.ok(await eventually(() => /no live lease remained, the daemon was stopped/.test(readFileSync(log, 'utf8'))), 'the watchdog says so');
  });

  test('a port the running daemon does not use is refused in one line', async () => {
    const cacheDir = tempDir();
    const cache = await AptCache.start({ cacheDir, backends: { debian: ['http://deb.debian.org/debian'], ubuntu: [] } });
    try {
      await assert.rejects(
        AptCache.start({ cacheDir, port: cache.port + 1, backends: { debian: [], ubuntu: [] } }),
        (error: unknown) => error instanceof HostSetupError && !error.message.includes('\n') && error.message.includes(`--apt-cache-port ${cache.port}`),
      );
      assert.ok(isAlive(cache.pid), 'the refused run did not stop the daemon');
    } finally {
      await cache.stop();
    }
    assert.ok(await eventually(() => !isAlive(cache.pid)));
  });
});

test('a cache folder the package cache cannot use is refused in one line', { skip: !hasAptCacherNg && 'apt-cacher-ng is not installed' }, async () => {
  const cacheDir = tempDir();
  writeFileSync(path.join(cacheDir, 'apt-cacher-ng'), 'a file where the folder goes\n');
  await assert.rejects(
    AptCache.start({ cacheDir, backends: { debian: [], ubuntu: [] } }),
    (error: unknown) => error instanceof HostSetupError && error.message.startsWith(`the package cache in ${path.join(cacheDir, 'apt-cacher-ng')}: `) && !error.message.includes('\n'),
  );
});

describe('shared host daemons (stand-in daemon: sleep)', () => {
  test('stand-in: leases of one process and of a dead one; the last live release stops it', async () => {
    const dir = tempDir();
    const start = async () => ({ processes: [spawnHostDaemon('sleep', ['1000'], path.join(dir, 'stand-in.log'))], info: { n: 1 } });
    const one = await leaseSharedDaemon({ dir, start });
    const two = await leaseSharedDaemon({ dir, start: () => assert.fail('a second daemon was started') });
    const daemon = one.record.processes[0]!;
    assert.deepEqual(two.record.processes, [daemon]);
    // A run that died without releasing.
    writeFileSync(path.join(dir, 'leases', `${deadPid()}-1-0.json`), JSON.stringify({ pid: deadPid(), startTime: 1, since: 'then' }));
    assert.equal((await one.release()).stopped, false);
    assert.ok(isAlive(daemon.pid, daemon.startTime), 'another lease is live');
    assert.equal((await two.release()).stopped, true, 'the dead lease does not keep the daemon');
    assert.ok(await eventually(() => !isAlive(daemon.pid, daemon.startTime)));
    assert.deepEqual(await pruneLeases(dir), []);
  });

  test('stand-in: a daemon left by holders that all died with their watchdogs is used by the next run and stopped by its release', async () => {
    const dir = tempDir();
    const orphan = spawnHostDaemon('sleep', ['1000'], path.join(dir, 'stand-in.log'));
    mkdirSync(path.join(dir, 'leases'), { recursive: true });
    writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify({ processes: [orphan], info: {}, since: 'then' }));
    writeFileSync(path.join(dir, 'leases', `${deadPid()}-1-0.json`), JSON.stringify({ pid: deadPid(), startTime: 1, since: 'then' }));
    const lease = await leaseSharedDaemon({ dir, start: async () => ({ processes: [spawnHostDaemon('sleep', ['1000'], path.join(dir, 'stand-in.log'))], info: {} }) });
    assert.equal(lease.record.processes[0]!.pid, orphan.pid, 'a live daemon without live leases is still used');
    await lease.release();
    assert.ok(await eventually(() => !isAlive(orphan.pid, orphan.startTime)));
  });

  test('stand-in: two processes with watchdogs share the daemon; SIGKILL of the last stops it', async () => {
    const dir = tempDir();
    const first = startHolder(['stand-in', dir, path.join(dir, 'logs-first')]);
    const { pid } = await first.next();
    const second = startHolder(['stand-in', dir, path.join(dir, 'logs-second')]);
    assert.equal((await second.next()).pid, pid);
    await first.release();
    assert.ok(isAlive(pid as number));
    second.child.kill('SIGKILL');
    assert.ok(await eventually(() => !isAlive(pid as number)), 'stopped by the watchdog of the last holder');
  });
});

describe('the build lock', () => {
  test('a second build of the same box and provider waits, says for whom, and goes on after', async () => {
    const cacheDir = tempDir();
    const first = startHolder(['build-lock', cacheDir, 'debian-12']);
    const { locked } = await first.next();
    const second = startHolder(['build-lock', cacheDir, 'debian-12']);
    const { waiting } = await second.next();
    assert.match(String(waiting), new RegExp(`^waiting for the build of debian-12 \\(qemu\\) by pid ${locked} since \\d{4}-`));
    await first.release();
    assert.equal((await second.next()).locked, second.child.pid);
    await second.release();
  });

  test('a lock left by a dead process is taken over', async () => {
    const cacheDir = tempDir();
    const lock = buildLockPath(cacheDir, 'debian-12', 'qemu');
    mkdirSync(path.dirname(lock), { recursive: true });
    writeFileSync(lock, JSON.stringify({ pid: deadPid(), host: hostname(), since: new Date().toISOString() }));
    const holder = startHolder(['build-lock', cacheDir, 'debian-12']);
    assert.equal((await holder.next()).locked, holder.child.pid);
    await holder.release();
    assert.equal(existsSync(lock), false);
  });
});
