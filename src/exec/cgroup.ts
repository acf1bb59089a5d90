// Optional cgroup v2 containment. A process cannot leave a cgroup by
// setsid, double fork or clearing its environment, so when boxsmith may
// create cgroups (root, or a delegated subtree) each supervised child runs in
// its own one and "kill everything of this stage" becomes exact. Where cgroup
// v2 is missing or read-only, supervision falls back to process groups plus
// the environment tag scan, which work everywhere.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendSignal } from './proc.ts';

let cachedBase: { dir: string } | { unavailable: string } | undefined;

/** Directory of this process's own cgroup in the v2 hierarchy, or why there is none. */
export function ownCgroupDir(): { dir: string } | { unavailable: string } {
  if (cachedBase) return cachedBase;
  cachedBase = findOwnCgroupDir();
  return cachedBase;
}

function findOwnCgroupDir(): { dir: string } | { unavailable: string } {
  let ownPath: string | undefined;
  try {
    // v2 membership is the "0::/path" line (also present in hybrid setups).
    ownPath = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((line) => line.startsWith('0::'))
      ?.slice(3);
  } catch {
    return { unavailable: '/proc/self/cgroup is unreadable' };
  }
  if (ownPath === undefined) return { unavailable: 'no cgroup v2 hierarchy' };
  let mountInfo: string;
  try {
    mountInfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return { unavailable: '/proc/self/mountinfo is unreadable' };
  }
  for (const line of mountInfo.split('\n')) {
    // "id parent maj:min root mountpoint options [optional...] - fstype source superoptions"
    const [left, right] = line.split(' - ');
    if (!left || !right || !right.startsWith('cgroup2 ')) continue;
    const fields = left.split(' ');
    const root = unescapeMountPath(fields[3] ?? '/');
    const mountPoint = unescapeMountPath(fields[4] ?? '');
    let relative: string;
    if (root === '/') relative = ownPath;
    else if (ownPath === root || ownPath.startsWith(`${root}/`)) relative = ownPath.slice(root.length) || '/';
    else continue;
    const dir = join(mountPoint, relative);
    if (existsSync(join(dir, 'cgroup.procs'))) return { dir };
  }
  return { unavailable: 'cgroup v2 is not mounted' };
}

function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** A leaf cgroup holding one supervised child and all of its descendants. */
export class TaskCgroup {
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Creates `<own cgroup>/<name>`. Returns the reason instead when cgroups
   * are unavailable here (not mounted, read-only, no permission).
   */
  static create(name: string): TaskCgroup | { unavailable: string } {
    const base = ownCgroupDir();
    if ('unavailable' in base) return base;
    const path = join(base.dir, name);
    try {
      mkdirSync(path);
    } catch (error) {
      return { unavailable: `cannot create ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
    }
    return new TaskCgroup(path);
  }

  /** Reattaches to an existing cgroup directory (the watchdog, after boxsmith died). */
  static at(path: string): TaskCgroup {
    return new TaskCgroup(path);
  }

  get procsFile(): string {
    return join(this.path, 'cgroup.procs');
  }

  /**
   * argv prefix that moves the process into this cgroup before exec'ing the
   * real command, so not even its first fork can escape. If the move fails
   * the command still runs; the other containment layers still apply.
   */
  wrapCommand(command: string, args: readonly string[]): { command: string; args: string[] } {
    return {
      command: '/bin/sh',
      args: ['-c', '{ echo $$ > "$0"; } 2>/dev/null; exec "$@"', this.procsFile, command, ...args],
    };
  }

  pids(): number[] {
    try {
      return readFileSync(this.procsFile, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map(Number);
    } catch {
      return [];
    }
  }

  signal(signal: NodeJS.Signals): void {
    for (const pid of this.pids()) sendSignal(pid, signal);
  }

  /** SIGKILLs every member atomically with cgroup.kill (Linux 5.14+), else one by one. */
  kill(): void {
    try {
      writeFileSync(join(this.path, 'cgroup.kill'), '1');
      return;
    } catch {
      // Older kernel or cgroup already removed: fall back to signalling members.
    }
    this.signal('SIGKILL');
  }

  /** Removes the (empty) cgroup. Returns false while processes remain in it. */
  remove(): boolean {
    try {
      rmdirSync(this.path);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }
}

/** Cgroup directory name of the n-th supervised child of a run ('' gives the run's common prefix). */
export function taskCgroupName(runId: string, taskNumber: number | ''): string {
  return `boxsmith-${runId}-task${taskNumber}`.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** The cgroups that belong to a run (found by name below this process's own cgroup). */
export function runCgroups(runId: string): TaskCgroup[] {
  const base = ownCgroupDir();
  if ('unavailable' in base) return [];
  const prefix = taskCgroupName(runId, '');
  try {
    return readdirSync(base.dir)
      .filter((name) => name.startsWith(prefix))
      .map((name) => TaskCgroup.at(join(base.dir, name)));
  } catch {
    return [];
  }
}
