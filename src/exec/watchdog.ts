// Client side of the watchdog: a separate process, in its own session, that
// outlives boxsmith. boxsmith tells it over a pipe (the watchdog's stdin,
// newline-delimited JSON) what the run has started; if that pipe closes
// without a goodbye (boxsmith was SIGKILLed, crashed, or the machine's OOM
// killer struck) the watchdog kills every process of the run and tears down
// the registered VMs. The server side is watchdog-server.ts.
//
// Wire format, one JSON object per line:
//   {"register":"pgid","pgid":N}                    a process group to kill
//   {"register":"pid","pid":N}                      a daemon to kill
//   {"register":"vm","kind":"qemu","pid":N}         a QEMU process
//   {"register":"vm","kind":"virtualbox","name":S}  VBoxManage controlvm S poweroff; unregistervm S --delete
//   {"register":"vm","kind":"vmware","vmx":S}       vmrun stop S hard; vmrun deleteVM S
//   {"register":"libvirt","domain":S}               virsh destroy S; virsh undefine S --remove-all-storage
//   {"register":"libvirt-pool","pool":S}            virsh pool-destroy S (a transient pool, after the domains)
//   {"register":"cgroup","path":S}                  a cgroup whose members to kill
//   {"register":"mounts","path":S}                  after the kill: unmount everything mounted at or below S
//   {"register":"scratch","path":S}                 after the kill and unmounts: remove S (boxsmith's own work folder)
//   {"register":"lease","dir":S,"id":S}             a lease on a shared host daemon (shared-daemon.ts):
//                                                   released, and the daemon stopped when no live lease remains
//   {"unregister":...same fields...}
//   {"goodbye":true}                                the run ended normally; exit without killing
// "pid" and "vm/qemu" may carry "startTime", "pgid" "leaderStartTime" (clock
// ticks since boot, from /proc/PID/stat), so that a recycled pid or group
// number is never killed by mistake.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readProcStat, waitAtMost } from './proc.ts';
import { RUN_ID_ENV, TASK_ID_ENV, defaultRunId } from './run-id.ts';
import { childEnvironment } from './child-env.ts';

export type WatchdogTarget =
  | { type: 'pgid'; pgid: number; leaderStartTime?: number }
  | { type: 'pid'; pid: number; startTime?: number }
  | { type: 'vm'; kind: 'qemu'; pid: number; startTime?: number }
  | { type: 'vm'; kind: 'virtualbox'; name: string }
  | { type: 'vm'; kind: 'vmware'; vmx: string }
  | { type: 'libvirt'; domain: string; connect?: string }
  | { type: 'libvirt-pool'; pool: string; connect?: string }
  | { type: 'cgroup'; path: string }
  | { type: 'mounts'; path: string }
  | { type: 'scratch'; path: string }
  | { type: 'lease'; dir: string; id: string };

export type WatchdogCommand = { action: 'register' | 'unregister'; target: WatchdogTarget } | { action: 'goodbye' };

export const WATCHDOG_LOG_NAME = 'watchdog.log';

/** The JSON line for a register/unregister message. */
export function encodeWatchdogMessage(action: 'register' | 'unregister', target: WatchdogTarget): string {
  const { type, ...fields } = target;
  return `${JSON.stringify({ [action]: type, ...fields })}\n`;
}

const isPositiveInt = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value > 1;
const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value !== '';

/** Parses and validates one line of the protocol. Throws an Error saying what is wrong. */
export function parseWatchdogMessage(line: string): WatchdogCommand {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    throw new Error(`not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) throw new Error(`not a JSON object: ${line.slice(0, 200)}`);
  const fields = message as Record<string, unknown>;
  if (fields.goodbye === true) return { action: 'goodbye' };
  const action = 'register' in fields ? 'register' : 'unregister' in fields ? 'unregister' : null;
  if (!action) throw new Error(`expected "register", "unregister" or "goodbye": ${line.slice(0, 200)}`);
  const type = fields[action];
  const startTime = typeof fields.startTime === 'number' && Number.isInteger(fields.startTime) ? fields.startTime : undefined;
  const bad = (what: string): Error => new Error(`${action} ${String(type)}: ${what}: ${line.slice(0, 200)}`);
  switch (type) {
    case 'pgid': {
      if (!isPositiveInt(fields.pgid)) throw bad('"pgid" must be a process group id > 1');
      const leaderStartTime = typeof fields.leaderStartTime === 'number' && Number.isInteger(fields.leaderStartTime) ? fields.leaderStartTime : undefined;
      return { action, target: leaderStartTime === undefined ? { type, pgid: fields.pgid } : { type, pgid: fields.pgid, leaderStartTime } };
    }
    case 'pid':
      if (!isPositiveInt(fields.pid)) throw bad('"pid" must be a process id > 1');
      return { action, target: startTime === undefined ? { type, pid: fields.pid } : { type, pid: fields.pid, startTime } };
    case 'cgroup':
    case 'mounts':
    case 'scratch':
      if (!isNonEmptyString(fields.path) || !fields.path.startsWith('/')) throw bad('"path" must be an absolute path');
      // Never a folder as wide as / or a top-level one: these targets unmount and delete below it.
      if (type !== 'cgroup' && fields.path.split('/').filter(Boolean).length < 2) throw bad('"path" is too close to / to clean up below');
      return { action, target: { type, path: fields.path } };
    case 'lease':
      if (!isNonEmptyString(fields.dir) || !fields.dir.startsWith('/')) throw bad('"dir" must be an absolute path');
      if (!isNonEmptyString(fields.id) || fields.id.includes('/')) throw bad('"id" must be a lease id');
      return { action, target: { type, dir: fields.dir, id: fields.id } };
    case 'libvirt':
      if (!isNonEmptyString(fields.domain)) throw bad('"domain" must be a non-empty string');
      return { action, target: isNonEmptyString(fields.connect) ? { type, domain: fields.domain, connect: fields.connect } : { type, domain: fields.domain } };
    case 'libvirt-pool':
      if (!isNonEmptyString(fields.pool)) throw bad('"pool" must be a non-empty string');
      return { action, target: isNonEmptyString(fields.connect) ? { type, pool: fields.pool, connect: fields.connect } : { type, pool: fields.pool } };
    case 'vm':
      switch (fields.kind) {
        case 'qemu':
          if (!isPositiveInt(fields.pid)) throw bad('"pid" must be a process id > 1');
          return { action, target: startTime === undefined ? { type, kind: 'qemu', pid: fields.pid } : { type, kind: 'qemu', pid: fields.pid, startTime } };
        case 'virtualbox':
          if (!isNonEmptyString(fields.name)) throw bad('"name" must be a non-empty string');
          return { action, target: { type, kind: 'virtualbox', name: fields.name } };
        case 'vmware':
          if (!isNonEmptyString(fields.vmx)) throw bad('"vmx" must be a non-empty string');
          return { action, target: { type, kind: 'vmware', vmx: fields.vmx } };
        default:
          throw bad(`unknown VM kind ${JSON.stringify(fields.kind)} (expected qemu, virtualbox or vmware)`);
      }
    default:
      throw bad('unknown target type (expected pgid, pid, vm, libvirt, libvirt-pool, cgroup, mounts, scratch or lease)');
  }
}

/** Identity of a target, so an unregister matches its register regardless of startTime. */
export function watchdogTargetKey(target: WatchdogTarget): string {
  switch (target.type) {
    case 'pgid':
      return `pgid:${target.pgid}`;
    case 'pid':
      return `pid:${target.pid}`;
    case 'cgroup':
    case 'mounts':
    case 'scratch':
      return `${target.type}:${target.path}`;
    case 'lease':
      return `lease:${target.dir}:${target.id}`;
    case 'libvirt':
      return `libvirt:${target.connect ?? ''}:${target.domain}`;
    case 'libvirt-pool':
      return `libvirt-pool:${target.connect ?? ''}:${target.pool}`;
    case 'vm':
      return target.kind === 'qemu' ? `vm:qemu:${target.pid}` : target.kind === 'virtualbox' ? `vm:virtualbox:${target.name}` : `vm:vmware:${target.vmx}`;
  }
}

export interface WatchdogStartOptions {
  /** Defaults to this process's run id (the one runSupervised uses). */
  runId?: string;
  /** The run's log folder; the watchdog writes watchdog.log there. */
  logDir: string;
  /** Time the watchdog gives the run's processes between SIGTERM and SIGKILL. Default 5 s. */
  graceMs?: number;
  /** How long to wait for the watchdog to report ready. Default 15 s. */
  startTimeoutMs?: number;
}

/** How to start watchdog-main: directly when compiled to .js, through tsx's loader when running from .ts sources. */
function watchdogCommand(): { program: string; nodeArgs: string[] } {
  const ownPath = fileURLToPath(import.meta.url);
  const extension = ownPath.endsWith('.ts') ? '.ts' : '.js';
  const program = join(ownPath, '..', `watchdog-main${extension}`);
  if (extension === '.js') return { program, nodeArgs: [] };
  const tsxLoader = createRequire(import.meta.url).resolve('tsx');
  return { program, nodeArgs: ['--import', pathToFileURL(tsxLoader).href] };
}

export class Watchdog {
  readonly runId: string;
  readonly pid: number;
  readonly logFile: string;
  private readonly child: ChildProcess;
  private readonly input: Socket;
  private exited = false;
  private saidGoodbye = false;

  private constructor(runId: string, child: ChildProcess, logFile: string) {
    this.runId = runId;
    this.child = child;
    this.pid = child.pid as number;
    this.logFile = logFile;
    this.input = child.stdin as Socket;
    // A dead watchdog must not crash boxsmith with EPIPE; the run goes on unguarded (and the loss is in the watchdog log).
    this.input.on('error', () => {});
    child.once('exit', () => {
      this.exited = true;
    });
  }

  /** Starts the watchdog process and waits until it listens. */
  static async start(options: WatchdogStartOptions): Promise<Watchdog> {
    const runId = options.runId ?? defaultRunId();
    const logDir = resolvePath(options.logDir);
    mkdirSync(logDir, { recursive: true });
    const logFile = join(logDir, WATCHDOG_LOG_NAME);
    const { program, nodeArgs } = watchdogCommand();
    const self = readProcStat(process.pid);
    const args = [
      ...nodeArgs,
      program,
      `--run-id=${runId}`,
      `--log-dir=${logDir}`,
      `--grace-ms=${options.graceMs ?? 5000}`,
      `--parent-pid=${process.pid}`,
      ...(self ? [`--parent-start-time=${self.startTime}`] : []),
    ];
    const env = childEnvironment(process.env);
    // The watchdog must never match the tags it scans for.
    delete env[RUN_ID_ENV];
    delete env[TASK_ID_ENV];
    const errorLog = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      // detached: own session, so neither the terminal's Ctrl-C nor a kill of boxsmith's process group reaches it.
      child = spawn(process.execPath, args, { cwd: '/', env, detached: true, stdio: ['pipe', 'pipe', errorLog] });
    } finally {
      closeSync(errorLog);
    }
    if (child.pid === undefined) {
      const error = await new Promise<Error>((resolve) => child.once('error', resolve));
      throw new Error(`could not start the watchdog: ${error.message}`);
    }

    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      const timer = setTimeout(() => {
        finish(new Error(`the watchdog (pid ${child.pid}) did not report ready within ${options.startTimeoutMs ?? 15000} ms; see ${logFile}`));
        child.kill('SIGKILL');
      }, options.startTimeoutMs ?? 15000);
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
        finish(new Error(`the watchdog exited during startup (${signal ?? `code ${code}`}); see ${logFile}`));
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        child.off('exit', onExit);
        lines.close();
        child.stdout!.destroy();
        if (error) reject(error);
        else resolve();
      };
      child.once('exit', onExit);
      lines.on('line', (line) => {
        if (line.includes('"ready"')) finish();
      });
    });

    const watchdog = new Watchdog(runId, child, logFile);
    // boxsmith may exit without goodbye at any time; the open pipe must not keep it alive.
    child.unref();
    watchdog.input.unref();
    return watchdog;
  }

  get running(): boolean {
    return !this.exited;
  }

  register(target: WatchdogTarget): void {
    this.send(encodeWatchdogMessage('register', target));
  }

  unregister(target: WatchdogTarget): void {
    this.send(encodeWatchdogMessage('unregister', target));
  }

  /**
   * The run ended normally (everything already cleaned up): tells the
   * watchdog to exit without killing anything, and waits for it to exit.
   */
  async goodbye(timeoutMs = 5000): Promise<void> {
    if (this.saidGoodbye) return;
    this.saidGoodbye = true;
    if (this.exited) return;
    this.child.ref();
    const exited = new Promise<void>((resolve) => {
      if (this.exited) resolve();
      else this.child.once('exit', () => resolve());
    });
    this.input.end(`${JSON.stringify({ goodbye: true })}\n`);
    await waitAtMost(exited, timeoutMs);
    this.child.unref();
  }

  private send(line: string): void {
    if (this.saidGoodbye || this.exited || this.input.destroyed) return;
    this.input.write(line);
  }
}
