// Reading the Linux process table from /proc, synchronously: these helpers
// are also used from signal handlers (the second Ctrl-C) where there is no
// time for async I/O, and a scan of a few hundred small files takes a few ms.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/PID/stat. Fixed at 100 by the Linux userspace ABI. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** One letter, as in ps: R running, S sleeping, D uninterruptible, T stopped, Z zombie, ... */
  state: string;
  /** Kernel's command name (15 chars at most). */
  comm: string;
  utimeTicks: number;
  stimeTicks: number;
  numThreads: number;
  /** Start time in clock ticks since boot; with the pid it identifies a process across pid reuse. */
  startTime: number;
}

/** Parses /proc/PID/stat. The comm field may contain spaces and parentheses, so split at the last ')'. */
export function parseProcStat(text: string): ProcInfo | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const comm = text.slice(open + 1, close);
  const fields = text.slice(close + 2).split(' ');
  const num = (index: number): number => Number(fields[index] ?? NaN);
  const info: ProcInfo = {
    pid,
    comm,
    state: fields[0] ?? '?',
    ppid: num(1),
    pgid: num(2),
    sid: num(3),
    utimeTicks: num(11),
    stimeTicks: num(12),
    numThreads: num(17),
    startTime: num(19),
  };
  return Number.isInteger(info.pid) && Number.isInteger(info.ppid) ? info : null;
}

export function readProcStat(pid: number): ProcInfo | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

export function listPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) >= 48 && name.charCodeAt(0) <= 57) pids.push(Number(name));
  }
  return pids;
}

/** All processes (including zombies), keyed by pid. Processes that vanish mid-scan are skipped. */
export function snapshotProcesses(): Map<number, ProcInfo> {
  const table = new Map<number, ProcInfo>();
  for (const pid of listPids()) {
    const info = readProcStat(pid);
    if (info) table.set(pid, info);
  }
  return table;
}

/** True when the process exists and is not a zombie (a zombie has exited; it only awaits reaping). */
export function isAlive(pid: number, startTime?: number): boolean {
  const info = readProcStat(pid);
  if (!info || info.state === 'Z' || info.state === 'X') return false;
  return startTime === undefined || info.startTime === startTime;
}

/**
 * Does the process's initial environment contain exactly `entry`
 * ("NAME=value")? Unreadable environments (other users, kernel threads,
 * zombies) count as no.
 */
export function hasEnvEntry(pid: number, entry: string): boolean {
  let environ: Buffer;
  try {
    environ = readFileSync(`/proc/${pid}/environ`);
  } catch {
    return false;
  }
  const needle = Buffer.from(entry);
  for (let at = environ.indexOf(needle); at >= 0; at = environ.indexOf(needle, at + 1)) {
    const startsEntry = at === 0 || environ[at - 1] === 0;
    const end = at + needle.length;
    const endsEntry = end === environ.length || environ[end] === 0;
    if (startsEntry && endsEntry) return true;
  }
  return false;
}

export function readCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return [];
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

/** The command line for display: argv joined, or [comm] for kernel threads / zombies. */
export function describeCommand(pid: number, comm: string): string {
  const argv = readCmdline(pid);
  if (!argv || argv.length === 0) return `[${comm}]`;
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ');
}

export function readExePath(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/** Kernel function the task sleeps in ("do_wait", "hrtimer_nanosleep"); "0"/empty mean running. Path may be "PID" or "PID/task/TID". */
export function readWchan(path: number | string): string | null {
  try {
    const value = readFileSync(`/proc/${path}/wchan`, 'utf8').trim();
    return value === '' || value === '0' ? '-' : value;
  } catch {
    return null;
  }
}

/** Kernel stack of a task (root only). Returns the text, or the reason it could not be read. */
export function readKernelStack(path: number | string): { stack: string } | { error: string } {
  try {
    const stack = readFileSync(`/proc/${path}/stack`, 'utf8').trimEnd();
    return { stack: stack === '' ? '(empty: running in user space)' : stack };
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

export function listThreads(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter(Number.isInteger);
  } catch {
    return [];
  }
}

/** This process and all its ancestors: never signalled by the tag scans, whatever their environment says. */
export function selfAndAncestors(): Set<number> {
  const chain = new Set<number>();
  let pid = process.pid;
  while (pid > 0 && !chain.has(pid)) {
    chain.add(pid);
    const info = readProcStat(pid);
    if (!info) break;
    pid = info.ppid;
  }
  return chain;
}

/** Pids of live processes whose environment contains `entry`, excluding this process and its ancestors. */
export function findProcessesWithEnv(entry: string, table: Map<number, ProcInfo> = snapshotProcesses()): ProcInfo[] {
  const protectedPids = selfAndAncestors();
  const found: ProcInfo[] = [];
  for (const info of table.values()) {
    if (protectedPids.has(info.pid) || info.state === 'Z') continue;
    if (hasEnvEntry(info.pid, entry)) found.push(info);
  }
  return found;
}

/** Adds to `members` every process of `table` descending from one of them (follows ppid links). */
export function addDescendants(members: Map<number, ProcInfo>, table: Map<number, ProcInfo>): void {
  const children = new Map<number, ProcInfo[]>();
  for (const info of table.values()) {
    const siblings = children.get(info.ppid);
    if (siblings) siblings.push(info);
    else children.set(info.ppid, [info]);
  }
  const queue = [...members.keys()];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    for (const child of children.get(pid) ?? []) {
      if (!members.has(child.pid)) {
        members.set(child.pid, child);
        queue.push(child.pid);
      }
    }
  }
}

/** kill(2) that treats "no such process" as done. Returns whether the signal was delivered. */
export function sendSignal(pid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false; // never 0/-1/1: those mean "my group", "everyone", init
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** kill(-pgid): signals every member of a process group. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** One line per process for logs: "1234 (sleep 100)". */
export function describeProcesses(processes: Iterable<ProcInfo>): string {
  return [...processes].map((p) => `${p.pid} (${describeCommand(p.pid, p.comm)})`).join(', ');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `promise`, but at most `ms`; the timer is cleared so it never keeps the process alive. Returns false on timeout. */
export async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
