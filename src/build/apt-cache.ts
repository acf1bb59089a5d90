// boxsmith's own apt-cacher-ng: its own configuration and cache folder, its upstream mirrors set
// explicitly (the stock Debian backend, ftp.debian.org, does not resolve everywhere), listening on
// loopback only. debootstrap reaches it as 127.0.0.1; guests under QEMU or VirtualBox user-mode
// networking reach the host's loopback as 10.0.2.2. One daemon per cache folder, shared by the
// runs of the host through leases (src/exec/shared-daemon.ts): started by the first run that needs
// it, stopped by the last; the mirrors are the first run's (every Debian mirror serves the same files).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-files.ts';
import { HostSetupError } from '../exec/errors.ts';
import { isAlive, sendSignal, sleep } from '../exec/proc.ts';
import { leaseSharedDaemon, spawnHostDaemon, type SharedDaemonLease } from '../exec/shared-daemon.ts';
import { findExecutable } from '../exec/tools.ts';
import type { Watchdog } from '../exec/watchdog.ts';

export const DEFAULT_APT_CACHE_PORT = 3142;
/** apt-cacher-ng 3.7.4 fails to bind ports from 32768 up ("Error resolving address for binding"): the kernel's ephemeral ports are no choice. */
const HIGHEST_USABLE_PORT = 32767;
/** The build host as seen from a guest on QEMU's or VirtualBox's user-mode network. */
export const GUEST_HOST_ADDRESS = '10.0.2.2';
const START_TIMEOUT_MS = 15_000;
const WATCH_INTERVAL_MS = 1000;

export interface AptCacheOptions {
  /** The cache lives in <cacheDir>/apt-cacher-ng, shared by runs. */
  cacheDir: string;
  /** Upstream mirrors, e.g. { debian: ['http://deb.debian.org/debian/'], ubuntu: [...] }. */
  backends: { debian: string[]; ubuntu: string[] };
  /** A fixed port, or undefined: 3142 when free, else the next free one. */
  port?: number;
  runId?: string;
  watchdog?: Watchdog;
  signal?: AbortSignal;
  /** Told when the daemon died and was started again. */
  onRestart?: (message: string) => void;
}

interface AptCacheInfo {
  port: number;
}

export class AptCache {
  private readonly leases: SharedDaemonLease<AptCacheInfo>[];
  private readonly watch: NodeJS.Timeout;
  private reviving: Promise<void> | undefined;

  private constructor(
    lease: SharedDaemonLease<AptCacheInfo>,
    private readonly takeLease: () => Promise<SharedDaemonLease<AptCacheInfo>>,
    private readonly onRestart?: (message: string) => void,
  ) {
    this.leases = [lease];
    // Guests and debootstrap are told this port for the whole build: should the daemon die (killed,
    // crashed), it is started again on it at once, and apt's retries get through.
    this.watch = setInterval(() => {
      if (!this.reviving && !this.daemonAlive()) this.reviving = this.revive().finally(() => (this.reviving = undefined));
    }, WATCH_INTERVAL_MS);
    this.watch.unref();
  }

  private get lease(): SharedDaemonLease<AptCacheInfo> {
    return this.leases.at(-1)!;
  }

  get port(): number {
    return this.lease.info.port;
  }

  /** The proxy URL for programs on the build host (debootstrap). */
  get hostUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The proxy URL for guests on a user-mode network. */
  get guestUrl(): string {
    return `http://${GUEST_HOST_ADDRESS}:${this.port}`;
  }

  /** Pid of the daemon serving this cache folder. */
  get pid(): number {
    return this.lease.record.processes[0]!.pid;
  }

  /** Joins the daemon serving the cache folder, starting it when none runs. Throws HostSetupError. */
  static async start(options: AptCacheOptions): Promise<AptCache> {
    const program = findExecutable('apt-cacher-ng', { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` });
    if (!program) throw new HostSetupError('apt-cacher-ng is not installed (Debian package apt-cacher-ng; setup/install.sh installs it)');
    const root = path.join(options.cacheDir, 'apt-cacher-ng');
    const takeLease = () =>
      leaseSharedDaemon<AptCacheInfo>({
        dir: root,
        start: (crashed) => startDaemon(program, root, crashed ? { ...options, port: crashed.info.port } : options),
        ...(options.runId ? { runId: options.runId } : {}),
        ...(options.watchdog ? { watchdog: options.watchdog } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      }).catch((error: unknown) => {
        // A folder it cannot write (permissions, a full disk) is the user's to fix: one line too.
        if ((error as NodeJS.ErrnoException).code) throw new HostSetupError(`the package cache in ${root}: ${(error as Error).message}`);
        throw error;
      });
    const lease = await takeLease();
    if (options.port !== undefined && lease.info.port !== options.port) {
      await lease.release();
      throw new HostSetupError(
        `the package cache of ${root} already runs on port ${lease.info.port} for another boxsmith run; use --apt-cache-port ${lease.info.port} or leave the option out`,
      );
    }
    return new AptCache(lease, takeLease, options.onRestart);
  }

  private daemonAlive(): boolean {
    return this.lease.record.processes.every((p) => isAlive(p.pid, p.startTime));
  }

  /** A new lease starts the daemon again on its port (or joins the one another run started). */
  private async revive(): Promise<void> {
    const died = this.pid;
    try {
      const lease = await this.takeLease();
      this.leases.push(lease);
      this.onRestart?.(`the package cache (apt-cacher-ng pid ${died}) died; ${lease.record.processes[0]!.pid} serves port ${lease.info.port} now`);
    } catch (error) {
      this.onRestart?.(`the package cache (apt-cacher-ng pid ${died}) died and could not be started again: ${(error as Error).message}`);
    }
  }

  /** Gives this run's leases back; the last run's stops the daemon. */
  async stop(): Promise<void> {
    clearInterval(this.watch);
    await this.reviving;
    for (const lease of this.leases) await lease.release();
  }
}

async function startDaemon(program: string, root: string, options: AptCacheOptions): Promise<{ processes: { pid: number; startTime: number }[]; info: AptCacheInfo }> {
  const port = options.port ?? (await firstFreePort(DEFAULT_APT_CACHE_PORT));
  if (options.port !== undefined && !(await portIsFree(port))) {
    throw new HostSetupError(`the package cache's port ${port} is in use; choose another with --apt-cache-port`);
  }
  if (port > HIGHEST_USABLE_PORT) throw new HostSetupError(`apt-cacher-ng cannot listen on port ${port} (above ${HIGHEST_USABLE_PORT}); choose a lower --apt-cache-port`);
  const config = path.join(root, 'config');
  const logDir = path.join(root, 'log');
  await writeFileAtomic(path.join(config, 'backends_debian'), `${unique(options.backends.debian).join('\n')}\n`);
  await writeFileAtomic(path.join(config, 'backends_ubuntu'), `${unique(options.backends.ubuntu).join('\n')}\n`);
  await writeFileAtomic(
    path.join(config, 'acng.conf'),
    [
      `CacheDir: ${path.join(root, 'cache')}`,
      `LogDir: ${logDir}`,
      'SupportDir: /usr/lib/apt-cacher-ng',
      `Port: ${port}`,
      'BindAddress: 127.0.0.1',
      // Not the defaults in /run/apt-cacher-ng: a second instance would take over the system one's socket.
      `SocketPath: ${path.join(root, 'socket')}`,
      `PidFile: ${path.join(root, 'pid')}`,
      'Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian',
      'Remap-uburep: file:ubuntu_mirrors /ubuntu ; file:backends_ubuntu',
      'Remap-secdeb: security.debian.org security.debian.org/debian-security deb.debian.org/debian-security /debian-security ; deb.debian.org/debian-security',
      // Packages change only with their version in the name: keep them; index files are refreshed.
      'ExThreshold: 4',
      '',
    ].join('\n'),
  );
  const daemonLog = path.join(logDir, 'daemon.log');
  const errorLog = path.join(logDir, 'apt-cacher.err');
  // Both logs are appended to by every start: only what this one wrote says why it failed.
  const offsets = [errorLog, daemonLog].map((file) => (existsSync(file) ? statSync(file).size : 0));
  const daemon = spawnHostDaemon(program, ['-c', config, 'ForeGround=1'], daemonLog);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepts(port))) {
    const exited = !isAlive(daemon.pid, daemon.startTime);
    if (exited || Date.now() > deadline) {
      sendSignal(daemon.pid, 'SIGKILL');
      const why = lastLine(errorLog, offsets[0]!) ?? lastLine(daemonLog, offsets[1]!);
      throw new HostSetupError(
        `apt-cacher-ng ${exited ? 'exited' : `did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s`}` +
          `${why ? `: ${why}` : ''} (logs in ${logDir}; --no-apt-cache builds without it)`,
      );
    }
    await sleep(100);
  }
  return { processes: [daemon], info: { port } };
}

function lastLine(file: string, from: number): string | undefined {
  try {
    return readFileSync(file).subarray(from).toString('utf8').trim().split('\n').pop()?.trim() || undefined;
  } catch {
    return undefined;
  }
}

function unique(values: string[]): string[] {
  return [...new Set(values.map((value) => (value.endsWith('/') ? value : `${value}/`)))];
}

export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function firstFreePort(from: number): Promise<number> {
  for (let port = from; port <= HIGHEST_USABLE_PORT; port++) if (await portIsFree(port)) return port;
  throw new HostSetupError(`no free port between ${from} and ${HIGHEST_USABLE_PORT} for the package cache`);
}
