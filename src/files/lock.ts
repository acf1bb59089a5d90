// An exclusive lock between processes on one cache entry: builds running side by side share the
// cache, and two of them writing the same .part file would waste the download (verification would
// still reject the mix). A lock left by a process that died is taken over.
import { open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once when the lock is held by someone else and this process starts waiting. */
  onWait?: (owner: LockOwner | undefined) => void;
  /** Called when a lock left by a process that is gone (or never wrote its name) is taken over. */
  onTakeOver?: (owner: LockOwner | undefined) => void;
  pollMs?: number;
}

/** A lock file with no owner written in it yet is another process between create and write. */
const OWNERLESS_LOCK_GRACE_MS = 10_000;

/** Runs `work` holding the lock file `lockPath`, waiting for it as long as its holder is alive. */
export async function withFileLock<T>(lockPath: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const release = await acquireFileLock(lockPath, options);
  try {
    return await work();
  } finally {
    await release();
  }
}

/** Takes the lock file `lockPath` (waiting as withFileLock does); returns what releases it. */
export async function acquireFileLock(lockPath: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  await acquire(lockPath, options);
  return () => rm(lockPath, { force: true });
}

async function acquire(lockPath: string, { signal, onWait, onTakeOver, pollMs = 200 }: LockOptions): Promise<void> {
  let reportedWait = false;
  for (;;) {
    signal?.throwIfAborted();
    if (await tryCreate(lockPath)) return;
    const owner = await readOwner(lockPath);
    const state = await lockState(lockPath, owner);
    if (state === 'gone') continue;
    if (state === 'stale') {
      // Two processes breaking the same stale lock at the same instant could both proceed; that
      // takes a crash and a coincidence, and verification still rejects a mixed-up download.
      await rm(lockPath, { force: true });
      onTakeOver?.(owner);
      continue;
    }
    if (!reportedWait) {
      reportedWait = true;
      onWait?.(owner);
    }
    try {
      await sleep(pollMs, undefined, { signal });
    } catch (error) {
      signal?.throwIfAborted();
      throw error;
    }
  }
}

async function tryCreate(lockPath: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(lockPath, 'wx', 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    await handle.writeFile(`${JSON.stringify(owner)}\n`);
  } finally {
    await handle.close();
  }
  return true;
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(lockPath, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && typeof owner.host === 'string'
      ? { pid: owner.pid, host: owner.host, since: String(owner.since) }
      : undefined;
  } catch {
    return undefined;
  }
}

async function lockState(lockPath: string, owner: LockOwner | undefined): Promise<'held' | 'stale' | 'gone'> {
  let modifiedMs: number;
  try {
    modifiedMs = (await stat(lockPath)).mtimeMs;
  } catch {
    return 'gone';
  }
  if (!owner) return Date.now() - modifiedMs > OWNERLESS_LOCK_GRACE_MS ? 'stale' : 'held';
  // Another host's process (a cache on a shared file system) cannot be checked: wait for it.
  if (owner.host !== hostname()) return 'held';
  return isAlive(owner.pid) ? 'held' : 'stale';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by another user
  }
}
