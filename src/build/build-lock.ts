// One build of a box for a provider at a time on a host: two would share the VM's name in
// VirtualBox/VMware, the box's version folder and the smoke test's libvirt box volume. The second
// waits (Ctrl-C and the run's time limit end the wait) and says for whom.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { withFileLock, type LockOwner } from '../files/lock.ts';

export function buildLockPath(cacheDir: string, box: string, provider: string): string {
  return path.join(cacheDir, 'locks', `build-${box}-${provider}.lock`);
}

export function waitingForBuildMessage(box: string, provider: string, owner: LockOwner | undefined): string {
  return owner
    ? `waiting for the build of ${box} (${provider}) by pid ${owner.pid} since ${owner.since}`
    : `waiting for another build of ${box} (${provider})`;
}

export async function withBuildLock<T>(
  cacheDir: string,
  box: string,
  provider: string,
  work: () => Promise<T>,
  options: { signal?: AbortSignal; onWait?: (message: string) => void } = {},
): Promise<T> {
  const lockPath = buildLockPath(cacheDir, box, provider);
  mkdirSync(path.dirname(lockPath), { recursive: true });
  return withFileLock(lockPath, work, {
    ...(options.signal ? { signal: options.signal } : {}),
    onWait: (owner) => options.onWait?.(waitingForBuildMessage(box, provider, owner)),
  });
}
