// Stopping a set of processes as Phusion's "The right way to deal with frozen processes on Unix"
// says: SIGTERM with SIGCONT (a stopped process acts on SIGTERM only once continued), the grace
// period (processes forked meanwhile get their SIGTERM too), then SIGKILL again and again until
// nothing is left (a forking process can add members between two scans). Used for a supervised
// task, for the whole run at its end, and by the watchdog; reaping a child is its owner's part.
import { sleep, type ProcInfo } from './proc.ts';

/** Time between SIGTERM and SIGKILL unless the caller says otherwise. */
export const DEFAULT_GRACE_MS = 10_000;
const POLL_MS = 100;
const KILL_ATTEMPTS = 40;
const KILL_POLL_MS = 50;

/** The processes to stop, scanned afresh each time, and how to signal them. */
export interface ProcessSet {
  live(): ProcInfo[];
  /** Sends `signal` to these members (and to their process group where the set owns one). */
  signal(signal: NodeJS.Signals, members: ProcInfo[]): void;
  /** Kills the set's cgroups (cgroup.kill), where it has any. */
  killCgroups(): void;
}

export interface StopNotes {
  /** Before the SIGTERM, with what is running (not called when nothing is). */
  terminating?(live: ProcInfo[]): void;
  /** Before the first SIGKILL, with what outlived the grace period. */
  killing?(live: ProcInfo[]): void;
}

/**
 * SIGTERM (+SIGCONT), grace, SIGKILL until none is left. Returns what was
 * running at the start and what could not be killed (stuck in uninterruptible
 * sleep); never waits longer than the grace period plus about two seconds.
 */
export async function stopProcesses(set: ProcessSet, graceMs: number, notes: StopNotes = {}): Promise<{ found: ProcInfo[]; survivors: ProcInfo[] }> {
  const found = set.live();
  if (found.length === 0) return { found, survivors: [] };
  notes.terminating?.(found);
  const signalled = new Set(found.map((p) => p.pid));
  set.signal('SIGTERM', found);
  set.signal('SIGCONT', found);
  let live = found;
  const deadline = Date.now() + graceMs;
  while (live.length > 0 && Date.now() < deadline) {
    await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
    live = set.live();
    const newcomers = live.filter((p) => !signalled.has(p.pid)); // forked while shutting down
    if (newcomers.length > 0) {
      for (const p of newcomers) signalled.add(p.pid);
      set.signal('SIGTERM', newcomers);
      set.signal('SIGCONT', newcomers);
    }
  }
  if (live.length === 0) return { found, survivors: [] };
  notes.killing?.(live);
  return { found, survivors: await killUntilGone(set) };
}

/** SIGKILLs repeatedly until nothing of the set is alive; returns what still is after the last attempt. */
export async function killUntilGone(set: ProcessSet): Promise<ProcInfo[]> {
  let live = set.live();
  for (let attempt = 0; attempt < KILL_ATTEMPTS && live.length > 0; attempt++) {
    set.killCgroups();
    set.signal('SIGKILL', live);
    await sleep(KILL_POLL_MS);
    live = set.live();
  }
  return live;
}
