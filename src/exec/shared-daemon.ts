// A host daemon shared by the boxsmith runs of one host (apt-cacher-ng on the cache folder,
// libvirtd): started by the first run that needs it, stopped by the last. Each run holds a lease
// while it uses the daemon; leases and the daemon's record live in one state folder:
//   <dir>/lock                        exclusive lock (src/files/lock.ts) for every change below
//   <dir>/daemon.json                 {"processes":[{"pid","startTime"}...],"info":{...},"since"}
//   <dir>/leases/<pid>-<start>-<n>.json  {"pid","startTime","runId","since"}: one per holder
// A lease whose process is gone (pid plus start time, so a recycled pid does not count) is dead
// and pruned. The daemon runs in its own session without the run's tag, so neither Ctrl-C, the
// run's cleanup nor its watchdog kills it while other runs use it; the watchdog instead releases
// its run's leases when the run dies, which stops the daemon when no live lease remains.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-files.ts';
import { withFileLock } from '../files/lock.ts';
import { isAlive, readProcStat, sendSignal, sleep } from './proc.ts';
import { RUN_ID_ENV, TASK_ID_ENV } from './run-id.ts';
import type { Watchdog } from './watchdog.ts';
import { childEnvironment } from './child-env.ts';

export interface DaemonProcess {
  pid: number;
  startTime: number;
}

export interface DaemonRecord<Info> {
  /** In start order; stopped in reverse. Empty for a daemon that boxsmith found running and only uses. */
  processes: DaemonProcess[];
  info: Info;
  since: string;
  /**
   * A module (file URL) exporting the last holder's `beforeStop` and `afterStop` hooks: named here,
   * not passed as functions, so that the watchdog of a run that died runs the same clean-up.
   */
  hooks?: string;
}

/** What a hooks module exports. */
export interface StopHooks<Info> {
  beforeStop?: StopHook<Info>;
  afterStop?: StopHook<Info>;
}

export interface LeaseHolder {
  pid: number;
  startTime: number;
  runId?: string;
  since: string;
}

export type StopHook<Info> = (record: DaemonRecord<Info>) => Promise<string[]>;

export interface Released {
  /** Whether this was the last live lease and the daemon was stopped. */
  stopped: boolean;
  /** What the stop hooks removed. */
  removed: string[];
}

export interface SharedDaemonOptions<Info> {
  /** The state folder (leases, record, lock). */
  dir: string;
  /**
   * Starts the daemon (called under the lock, when none runs) and waits until it serves; `crashed`
   * is the record of one that died while runs held it, whose state the new one carries on.
   */
  start: (crashed?: DaemonRecord<Info>) => Promise<Omit<DaemonRecord<Info>, 'since' | 'hooks'>>;
  /** The module (file URL) with the last holder's clean-ups, see DaemonRecord.hooks. */
  hooks?: string;
  runId?: string;
  watchdog?: Watchdog;
  signal?: AbortSignal;
}

const STOP_GRACE_MS = 5000;
let leaseCounter = 0;

/** Takes a lease on the daemon, starting it when no live one runs. */
export async function leaseSharedDaemon<Info>(options: SharedDaemonOptions<Info>): Promise<SharedDaemonLease<Info>> {
  const { dir } = options;
  mkdirSync(path.join(dir, 'leases'), { recursive: true });
  const self = readProcStat(process.pid);
  if (!self) throw new Error('cannot read /proc/self/stat: a lease needs the process start time');
  const id = `${process.pid}-${self.startTime}-${leaseCounter++}`;
  const holder: LeaseHolder = { pid: process.pid, startTime: self.startTime, ...(options.runId ? { runId: options.runId } : {}), since: new Date().toISOString() };
  // Registered first: a run killed right after writing its lease still has it released.
  options.watchdog?.register({ type: 'lease', dir, id });
  const record = await withFileLock(
    lockFile(dir),
    async () => {
      const live = await pruneLeases(dir);
      let current = await readRecord<Info>(dir);
      let crashed: DaemonRecord<Info> | undefined;
      if (current && !daemonAlive(current)) {
        // It crashed (or one of its processes did): what is left of it goes, and a new one starts.
        await stopProcesses(current.processes);
        if (live.length > 0) crashed = current;
        current = undefined;
      } else if (current && live.length === 0 && current.processes.length === 0) {
        current = undefined; // a record of a daemon found running, left by holders that died
      }
      if (!current) {
        const started = await options.start(crashed);
        current = { ...started, since: new Date().toISOString(), ...(options.hooks ? { hooks: options.hooks } : {}) };
        await writeFileAtomic(recordFile(dir), `${JSON.stringify(current)}\n`);
      }
      await writeFileAtomic(path.join(dir, 'leases', `${id}.json`), `${JSON.stringify(holder)}\n`);
      return current;
    },
    options.signal ? { signal: options.signal } : {},
  ).catch((error: unknown) => {
    options.watchdog?.unregister({ type: 'lease', dir, id });
    throw error;
  });
  return new SharedDaemonLease(options, id, record);
}

export class SharedDaemonLease<Info> {
  private released = false;

  constructor(
    private readonly options: SharedDaemonOptions<Info>,
    readonly id: string,
    readonly record: DaemonRecord<Info>,
  ) {}

  get info(): Info {
    return this.record.info;
  }

  /** Gives the lease back; the last holder stops the daemon. */
  async release(): Promise<Released> {
    if (this.released) return { stopped: false, removed: [] };
    this.released = true;
    const released = await releaseLeases<Info>(this.options.dir, [this.id]);
    this.options.watchdog?.unregister({ type: 'lease', dir: this.options.dir, id: this.id });
    return released;
  }
}

/**
 * Removes the leases `ids` (and dead ones) and, when no live lease remains, runs the record's
 * clean-up hooks around stopping the daemon and removes its record. Used by a run ending and by
 * the watchdog of a run that died.
 */
export async function releaseLeases<Info>(dir: string, ids: string[]): Promise<Released> {
  return withFileLock(lockFile(dir), async () => {
    for (const id of ids) await rm(path.join(dir, 'leases', `${id}.json`), { force: true });
    if ((await pruneLeases(dir)).length > 0) return { stopped: false, removed: [] };
    const record = await readRecord<Info>(dir);
    if (!record) return { stopped: false, removed: [] };
    const hooks: StopHooks<Info> = record.hooks ? ((await import(record.hooks)) as StopHooks<Info>) : {};
    const removed: string[] = [];
    try {
      if (hooks.beforeStop && daemonAlive(record)) removed.push(...(await hooks.beforeStop(record)));
    } finally {
      await stopProcesses(record.processes);
      await rm(recordFile(dir), { force: true });
    }
    if (hooks.afterStop) removed.push(...(await hooks.afterStop(record)));
    return { stopped: true, removed };
  });
}

/** The live leases of the state folder (dead ones are removed). */
export async function pruneLeases(dir: string): Promise<LeaseHolder[]> {
  const leasesDir = path.join(dir, 'leases');
  const live: LeaseHolder[] = [];
  let names: string[];
  try {
    names = await readdir(leasesDir);
  } catch {
    return live;
  }
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    let lease: LeaseHolder | undefined;
    try {
      lease = JSON.parse(await readFile(path.join(leasesDir, name), 'utf8')) as LeaseHolder;
    } catch {
      lease = undefined; // unreadable: written atomically, so not one in the making
    }
    if (lease && typeof lease.pid === 'number' && isAlive(lease.pid, lease.startTime)) live.push(lease);
    else await rm(path.join(leasesDir, name), { force: true });
  }
  return live;
}

export async function readRecord<Info>(dir: string): Promise<DaemonRecord<Info> | undefined> {
  try {
    return JSON.parse(await readFile(recordFile(dir), 'utf8')) as DaemonRecord<Info>;
  } catch {
    return undefined;
  }
}

function daemonAlive(record: DaemonRecord<unknown>): boolean {
  return record.processes.every((p) => isAlive(p.pid, p.startTime));
}

/** SIGTERM in reverse start order, then SIGKILL to whatever outlives the grace. */
async function stopProcesses(processes: DaemonProcess[]): Promise<void> {
  for (const p of [...processes].reverse()) {
    if (!isAlive(p.pid, p.startTime)) continue;
    sendSignal(p.pid, 'SIGTERM');
    const deadline = Date.now() + STOP_GRACE_MS;
    while (isAlive(p.pid, p.startTime) && Date.now() < deadline) await sleep(50);
    if (isAlive(p.pid, p.startTime)) sendSignal(p.pid, 'SIGKILL');
  }
}

/**
 * Starts a daemon outside the run: its own session, no run tag in its environment, output
 * appended to `logFile`, not waited for by this process.
 */
export function spawnHostDaemon(command: string, args: string[], logFile: string): DaemonProcess {
  const env = childEnvironment(process.env);
  delete env[RUN_ID_ENV];
  delete env[TASK_ID_ENV];
  mkdirSync(path.dirname(logFile), { recursive: true });
  const log = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { cwd: '/', env, detached: true, stdio: ['ignore', log, log] });
    child.on('error', () => undefined); // seen as a daemon that does not answer
    child.unref();
    const info = child.pid === undefined ? null : readProcStat(child.pid);
    if (child.pid === undefined || !info) throw new Error(`could not start ${command}`);
    return { pid: child.pid, startTime: info.startTime };
  } finally {
    closeSync(log);
  }
}

function lockFile(dir: string): string {
  return path.join(dir, 'lock');
}

function recordFile(dir: string): string {
  return path.join(dir, 'daemon.json');
}
