// libvirt for vagrant-libvirt, started by boxsmith where no libvirtd runs (containers and CI
// machines have no systemd to start it): virtlogd and libvirtd in their own process groups under
// the supervisor and the watchdog, stopped afterwards, with the NAT network, firewall chains and
// storage volumes that the smoke test made removed again. A libvirtd that was already running is
// used and left as it was found.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runCaptured } from '../exec/captured.ts';
import { StageAbortedError } from '../exec/errors.ts';
import { runSupervised } from '../exec/supervise.ts';
import { findExecutable } from '../exec/tools.ts';
import type { Watchdog } from '../exec/watchdog.ts';
import { sleep } from '../exec/proc.ts';

export const LIBVIRT_URI = 'qemu:///system';
const SBIN_PATH = { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

export interface LibvirtState {
  networks: string[];
  volumes: string[];
  iptablesChains: string[];
}

export interface LibvirtStartOptions {
  logDir: string;
  watchdog?: Watchdog;
  runTimeoutMs: number;
  signal?: AbortSignal;
}

async function virsh(args: string[], timeoutMs = 30_000) {
  return runCaptured('virsh', ['-c', LIBVIRT_URI, ...args], { timeoutMs });
}

/** Whether a libvirtd answers on the system socket. */
export async function libvirtAnswers(): Promise<boolean> {
  const result = await virsh(['version'], 15_000);
  return result.exitCode === 0;
}

export async function libvirtState(): Promise<LibvirtState> {
  const networks = (await virsh(['net-list', '--all', '--name'])).stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  const pools = (await virsh(['pool-list', '--all', '--name'])).stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  const volumes: string[] = [];
  for (const pool of pools) {
    const listed = (await virsh(['vol-list', pool])).stdout.split('\n').slice(2);
    for (const line of listed) {
      const name = line.trim().split(/\s+/)[0];
      if (name) volumes.push(`${pool}/${name}`);
    }
  }
  const iptables = await runCaptured('iptables', ['-S'], { timeoutMs: 15_000, env: { ...process.env, ...SBIN_PATH } });
  const iptablesChains = iptables.stdout.split('\n').filter((l) => l.startsWith('-N ')).map((l) => l.slice(3).trim());
  return { networks, volumes, iptablesChains };
}

export class LibvirtDaemons {
  private constructor(
    /** False when a libvirtd was already running: it is used, not stopped. */
    readonly started: boolean,
    readonly before: LibvirtState,
    private readonly daemons: { controller: AbortController; exited: Promise<unknown> }[],
  ) {}

  static async start(options: LibvirtStartOptions): Promise<LibvirtDaemons> {
    if (await libvirtAnswers()) return new LibvirtDaemons(false, await libvirtState(), []);
    const daemons: { controller: AbortController; exited: Promise<unknown> }[] = [];
    const startDaemon = (name: string) => {
      const program = findExecutable(name, SBIN_PATH);
      if (!program) throw new Error(`${name} is not installed (Debian package libvirt-daemon-system; setup/install.sh installs it)`);
      const controller = new AbortController();
      const exited = runSupervised({
        stage: name,
        command: program,
        args: [],
        logFile: path.join(options.logDir, `${name}.log`),
        diagnosticsDir: options.logDir,
        timeoutMs: options.runTimeoutMs,
        graceMs: 10_000,
        signal: controller.signal,
        ...(options.watchdog ? { watchdog: options.watchdog } : {}),
      });
      exited.catch(() => undefined);
      daemons.push({ controller, exited });
    };
    try {
      startDaemon('virtlogd');
      startDaemon('libvirtd');
      const deadline = Date.now() + 30_000;
      while (!(await libvirtAnswers())) {
        if (Date.now() > deadline) throw new Error(`libvirtd did not answer on ${LIBVIRT_URI} within 30 s (see ${options.logDir}/libvirtd.log)`);
        if (options.signal?.aborted) throw new StageAbortedError('libvirtd', 'interrupted');
        await sleep(250);
      }
    } catch (error) {
      await stopAll(daemons);
      throw error;
    }
    // What was there before the daemons started: nothing of it is removed afterwards.
    return new LibvirtDaemons(true, await libvirtState(), daemons);
  }

  /**
   * Removes what the run added (domains are the caller's: destroy them first), then stops the
   * daemons boxsmith started. Networks are removed only when boxsmith started libvirtd. On a
   * libvirtd that was already running, other runs add volumes too: only the new volumes
   * `isOwnVolume` ("pool/name") claims are removed.
   */
  async stop(isOwnVolume: (volume: string) => boolean = () => false): Promise<string[]> {
    const removed: string[] = [];
    const now = await libvirtState().catch(() => undefined);
    if (now) {
      for (const volume of now.volumes.filter((v) => !this.before.volumes.includes(v) && (this.started || isOwnVolume(v)))) {
        const [pool, name] = volume.split('/') as [string, string];
        if ((await virsh(['vol-delete', '--pool', pool, name])).exitCode === 0) removed.push(`volume ${volume}`);
      }
      if (this.started) {
        for (const network of now.networks.filter((n) => !this.before.networks.includes(n))) {
          await virsh(['net-destroy', network]);
          if ((await virsh(['net-undefine', network])).exitCode === 0) removed.push(`network ${network}`);
        }
      }
    }
    await stopAll(this.daemons);
    if (this.started) removed.push(...(await removeFirewallChains(this.before.iptablesChains)));
    return removed;
  }
}

async function stopAll(daemons: { controller: AbortController; exited: Promise<unknown> }[]): Promise<void> {
  // libvirtd first: it may still write through virtlogd.
  for (const daemon of [...daemons].reverse()) {
    daemon.controller.abort();
    await daemon.exited.catch((error: unknown) => {
      if (!(error instanceof StageAbortedError)) throw error;
    });
  }
}

/** libvirt's LIBVIRT_* chains and the jumps into them, where they were not there before. */
async function removeFirewallChains(before: string[]): Promise<string[]> {
  const env = { ...process.env, ...SBIN_PATH };
  if (!findExecutable('iptables', SBIN_PATH)) return [];
  const removed: string[] = [];
  for (const table of ['filter', 'nat', 'mangle']) {
    const rules = (await runCaptured('iptables', ['-t', table, '-S'], { timeoutMs: 15_000, env })).stdout.split('\n');
    const chains = rules.filter((l) => l.startsWith('-N LIBVIRT_')).map((l) => l.slice(3).trim()).filter((c) => !before.includes(c));
    if (!chains.length) continue;
    for (const rule of rules.filter((l) => l.startsWith('-A ') && chains.some((c) => l.includes(`-j ${c}`)) && !chains.some((c) => l.startsWith(`-A ${c} `)))) {
      await runCaptured('iptables', ['-t', table, '-D', ...rule.slice(3).split(' ')], { timeoutMs: 15_000, env });
    }
    for (const chain of chains) {
      await runCaptured('iptables', ['-t', table, '-F', chain], { timeoutMs: 15_000, env });
      if ((await runCaptured('iptables', ['-t', table, '-X', chain], { timeoutMs: 15_000, env })).exitCode === 0) removed.push(`iptables ${table} chain ${chain}`);
    }
  }
  return removed;
}

/** The pid of a running libvirt QEMU domain, from libvirt's pid file. */
export function domainPidFile(domain: string): string | undefined {
  const file = `/run/libvirt/qemu/${domain}.pid`;
  return existsSync(file) ? file : undefined;
}
