// boxsmith's own apt-cacher-ng: its own configuration and cache folder, its upstream mirrors set
// explicitly (the stock Debian backend, ftp.debian.org, does not resolve everywhere), listening on
// loopback only. debootstrap reaches it as 127.0.0.1; guests under QEMU or VirtualBox user-mode
// networking reach the host's loopback as 10.0.2.2. Started for a run, stopped when it ends.
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { StageAbortedError } from '../exec/errors.ts';
import { runSupervised } from '../exec/supervise.ts';
import { findExecutable } from '../exec/tools.ts';
import type { Watchdog } from '../exec/watchdog.ts';
import { sleep } from '../exec/proc.ts';

export const DEFAULT_APT_CACHE_PORT = 3142;
/** The build host as seen from a guest on QEMU's or VirtualBox's user-mode network. */
export const GUEST_HOST_ADDRESS = '10.0.2.2';

export interface AptCacheOptions {
  /** The cache lives in <cacheDir>/apt-cacher-ng, shared by runs. */
  cacheDir: string;
  logDir: string;
  /** Upstream mirrors, e.g. { debian: ['http://deb.debian.org/debian/'], ubuntu: [...] }. */
  backends: { debian: string[]; ubuntu: string[] };
  /** A fixed port, or undefined: 3142 when free, else any free port. */
  port?: number;
  watchdog?: Watchdog;
  runTimeoutMs: number;
}

export class AptCache {
  private constructor(
    readonly port: number,
    private readonly controller: AbortController,
    private readonly exited: Promise<unknown>,
  ) {}

  /** The proxy URL for programs on the build host (debootstrap). */
  get hostUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The proxy URL for guests on a user-mode network. */
  get guestUrl(): string {
    return `http://${GUEST_HOST_ADDRESS}:${this.port}`;
  }

  static async start(options: AptCacheOptions): Promise<AptCache> {
    const program = findExecutable('apt-cacher-ng', { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` });
    if (!program) throw new Error('apt-cacher-ng is not installed (Debian package apt-cacher-ng; setup/install.sh installs it)');
    const port = options.port ?? ((await portIsFree(DEFAULT_APT_CACHE_PORT)) ? DEFAULT_APT_CACHE_PORT : await freePort());
    if (options.port !== undefined && !(await portIsFree(port))) {
      throw new Error(`the package cache's port ${port} is in use; choose another with --apt-cache-port`);
    }
    const root = path.join(options.cacheDir, 'apt-cacher-ng');
    const config = path.join(root, 'config');
    for (const dir of [config, path.join(root, 'cache'), path.join(root, 'log')]) mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(config, 'backends_debian'), `${unique(options.backends.debian).join('\n')}\n`);
    writeFileSync(path.join(config, 'backends_ubuntu'), `${unique(options.backends.ubuntu).join('\n')}\n`);
    writeFileSync(
      path.join(config, 'acng.conf'),
      [
        `CacheDir: ${path.join(root, 'cache')}`,
        `LogDir: ${path.join(root, 'log')}`,
        'SupportDir: /usr/lib/apt-cacher-ng',
        `Port: ${port}`,
        'BindAddress: 127.0.0.1',
        'Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian',
        'Remap-uburep: file:ubuntu_mirrors /ubuntu ; file:backends_ubuntu',
        'Remap-secdeb: security.debian.org security.debian.org/debian-security deb.debian.org/debian-security /debian-security ; deb.debian.org/debian-security',
        // Packages change only with their version in the name: keep them; index files are refreshed.
        'ExThreshold: 4',
        '',
      ].join('\n'),
    );

    const controller = new AbortController();
    const exited = runSupervised({
      stage: 'apt-cache',
      command: program,
      args: ['-c', config, 'ForeGround=1'],
      logFile: path.join(options.logDir, 'apt-cache.log'),
      diagnosticsDir: options.logDir,
      timeoutMs: options.runTimeoutMs,
      graceMs: 5000,
      signal: controller.signal,
      ...(options.watchdog ? { watchdog: options.watchdog } : {}),
    });
    let failure: unknown;
    exited.catch((error: unknown) => {
      failure = error;
    });
    const deadline = Date.now() + 15_000;
    while (!(await accepts(port))) {
      if (failure) throw new Error(`apt-cacher-ng did not start: ${(failure as Error).message}`);
      if (Date.now() > deadline) {
        controller.abort();
        await exited.catch(() => undefined);
        throw new Error(`apt-cacher-ng did not listen on 127.0.0.1:${port} within 15 s (see ${path.join(options.logDir, 'apt-cache.log')})`);
      }
      await sleep(100);
    }
    return new AptCache(port, controller, exited);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.exited.catch((error: unknown) => {
      if (!(error instanceof StageAbortedError)) throw error;
    });
  }
}

function unique(values: string[]): string[] {
  return [...new Set(values.map((value) => (value.endsWith('/') ? value : `${value}/`)))];
}

function accepts(port: number): Promise<boolean> {
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
