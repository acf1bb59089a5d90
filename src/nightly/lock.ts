// One nightly at a time per host and target: two nights publishing to the same place would race
// for its versions, and two on one host would halve each other's machine. The lock is a file in
// the host's cache folder (which every run of the host shares, as its build locks), named by the
// target; it holds its holder's pid, host and start time (src/files/lock.ts). A second nightly
// refuses at once (a nightly that waits would run in the morning); a lock whose holder is gone is
// taken over, and said.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { acquireFileLock, type LockOwner } from '../files/lock.ts';
import { formatTarget, type PublishTarget } from '../publish/target.ts';

export class NightlyLockedError extends Error {
  constructor(
    readonly lockFile: string,
    readonly owner: LockOwner | undefined,
  ) {
    super(
      `another nightly${owner ? ` (pid ${owner.pid} on ${owner.host}, since ${owner.since})` : ''} holds ${lockFile}; ` +
        'one nightly runs at a time per host and target: wait for it, or stop it',
    );
    this.name = 'NightlyLockedError';
  }
}

export function nightlyLockFile(cacheDir: string, target: PublishTarget | undefined): string {
  const key = target ? formatTarget(target) : 'no target';
  return path.join(cacheDir, 'nightly', `${createHash('sha256').update(key).digest('hex').slice(0, 16)}.lock`);
}

/** Takes the lock or throws NightlyLockedError naming its holder; returns what releases it. */
export async function acquireNightlyLock(cacheDir: string, target: PublishTarget | undefined, onTakeOver: (line: string) => void): Promise<() => Promise<void>> {
  const lockFile = nightlyLockFile(cacheDir, target);
  mkdirSync(path.dirname(lockFile), { recursive: true });
  return acquireFileLock(lockFile, {
    // The file lock waits for a live holder; a nightly does not: it refuses on the first sight of one.
    onWait: (owner) => {
      throw new NightlyLockedError(lockFile, owner);
    },
    onTakeOver: (owner) => onTakeOver(`took over the nightly lock ${lockFile}${owner ? ` of pid ${owner.pid} (since ${owner.since}), which is gone` : ''}`),
  });
}
