// libvirt for vagrant-libvirt, started by boxsmith where no libvirtd runs (containers and CI
// machines have no systemd to start it): virtlogd and libvirtd, shared by the smoke tests of the
// host's boxsmith runs through leases (src/exec/shared-daemon.ts) and stopped by the last of them,
// which also removes the NAT networks and firewall chains the smoke tests made. Each run removes
// the storage volumes of its own domain and box. A libvirtd that was already running is used and
// left as it was found (only the runs' volumes go).
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCaptured } from '../exec/captured.ts';
import { StageAbortedError } from '../exec/errors.ts';
import { leaseSharedDaemon, spawnHostDaemon, type DaemonProcess, type DaemonRecord, type SharedDaemonLease } from '../exec/shared-daemon.ts';
import { findExecutable } from '../exec/tools.ts';
import type { Watchdog } from '../exec/watchdog.ts';
import { sendSignal, sleep } from '../exec/proc.ts';
import { acquireFileLock } from '../inputs/lock.ts';

export const LIBVIRT_URI = 'qemu:///system';
const SBIN_PATH = { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

export interface LibvirtState {
  networks: string[];
  volumes: string[];
  iptablesChains: string[];
}

export interface LibvirtStartOptions {
  logDir: string;
  /** The Vagrant box name (org/name): vagrant-libvirt's volume of the box is named after it. */
  boxName: string;
  /** The run's domain: its volumes start with its name. */
  domain: string;
  runId?: string;
  watchdog?: Watchdog;
  signal?: AbortSignal;
  /** Called once when another run smoke-tests the same box name and this one waits for it. */
  onWait?: (message: string) => void;
}

/** Host-wide, not per cache folder: every run on the host shares the one system libvirtd. */
export function libvirtStateDir(): string {
  return path.join(process.getuid?.() === 0 ? '/run' : tmpdir(), 'boxsmith', 'libvirt');
}

interface LibvirtInfo {
  /** False when a libvirtd was already running: it is used, not stopped. */
  started: boolean;
  /** What was there before boxsmith started libvirtd: the last holder removes nothing of it. */
  before: LibvirtState;
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
    private readonly lease: SharedDaemonLease<LibvirtInfo>,
    private readonly releaseBoxLock: () => Promise<void>,
    /** This run's view when it began: volumes it adds are found against it. */
    private readonly before: LibvirtState,
    private readonly ownVolumePrefixes: string[],
  ) {}

  /** What serves this run: boxsmith's daemons (perhaps started by another run) or a libvirtd found running. */
  get description(): string {
    const libvirtd = this.lease.record.processes[1];
    return libvirtd ? `virtlogd and libvirtd started by boxsmith (libvirtd pid ${libvirtd.pid}, shared by the runs of this host)` : 'the libvirtd already running';
  }

  static async start(options: LibvirtStartOptions): Promise<LibvirtDaemons> {
    const dir = libvirtStateDir();
    const lease = await leaseSharedDaemon<LibvirtInfo>({
      dir,
      start: () => startDaemons(options),
      beforeStop: removeNetworks,
      afterStop: async (record) => (record.info.started ? removeFirewallChains(record.info.before.iptablesChains) : []),
      ...(options.runId ? { runId: options.runId } : {}),
      ...(options.watchdog ? { watchdog: options.watchdog } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    // vagrant-libvirt keeps one volume per box name (and version, 0 for a file) in the pool, and
    // reuses it when it is there: two runs testing the same box name would test one box.
    let releaseBoxLock: () => Promise<void>;
    try {
      mkdirSync(path.join(dir, 'boxes'), { recursive: true });
      releaseBoxLock = await acquireFileLock(path.join(dir, 'boxes', `${options.boxName.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`), {
        ...(options.signal ? { signal: options.signal } : {}),
        onWait: (owner) =>
          options.onWait?.(`waiting for the smoke test of ${options.boxName} by pid ${owner?.pid ?? '?'}${owner ? ` since ${owner.since}` : ''} (libvirt keeps one volume per box name)`),
      });
    } catch (error) {
      await lease.release();
      throw error;
    }
    const before = await libvirtState();
    return new LibvirtDaemons(lease, releaseBoxLock, before, [options.domain, `${options.boxName.replace(/\//g, '-VAGRANTSLASH-')}_vagrant_box_image_`]);
  }

  /**
   * Removes the volumes this run added (domains are the caller's: destroy them first), then gives
   * the lease back: the last run stops the daemons boxsmith started, with the networks and
   * firewall chains added since.
   */
  async stop(): Promise<string[]> {
    const removed: string[] = [];
    try {
      const now = await libvirtState().catch(() => undefined);
      for (const volume of now?.volumes ?? []) {
        const [pool, name] = volume.split('/') as [string, string];
        if (this.before.volumes.includes(volume) || !this.ownVolumePrefixes.some((prefix) => name.startsWith(prefix))) continue;
        if ((await virsh(['vol-delete', '--pool', pool, name])).exitCode === 0) removed.push(`volume ${volume}`);
      }
    } finally {
      await this.releaseBoxLock();
      removed.push(...(await this.lease.release()).removed);
    }
    return removed;
  }
}

async function startDaemons(options: LibvirtStartOptions): Promise<Omit<DaemonRecord<LibvirtInfo>, 'since'>> {
  if (await libvirtAnswers()) return { processes: [], info: { started: false, before: await libvirtState() } };
  const processes: DaemonProcess[] = [];
  try {
    for (const name of ['virtlogd', 'libvirtd']) {
      const program = findExecutable(name, SBIN_PATH);
      if (!program) throw new Error(`${name} is not installed (Debian package libvirt-daemon-system; setup/install.sh installs it)`);
      processes.push(spawnHostDaemon(program, [], path.join(options.logDir, `${name}.log`)));
    }
    const deadline = Date.now() + 30_000;
    while (!(await libvirtAnswers())) {
      if (Date.now() > deadline) throw new Error(`libvirtd did not answer on ${LIBVIRT_URI} within 30 s (see ${options.logDir}/libvirtd.log)`);
      if (options.signal?.aborted) throw new StageAbortedError('libvirtd', 'interrupted');
      await sleep(250);
    }
  } catch (error) {
    for (const daemon of processes.reverse()) sendSignal(daemon.pid, 'SIGKILL');
    throw error;
  }
  return { processes, info: { started: true, before: await libvirtState() } };
}

/** The last holder's cleanup while libvirtd still runs: the networks the smoke tests made. */
async function removeNetworks(record: DaemonRecord<LibvirtInfo>): Promise<string[]> {
  if (!record.info.started) return [];
  const removed: string[] = [];
  const now = await libvirtState().catch(() => undefined);
  for (const network of now?.networks.filter((n) => !record.info.before.networks.includes(n)) ?? []) {
    await virsh(['net-destroy', network]);
    if ((await virsh(['net-undefine', network])).exitCode === 0) removed.push(`network ${network}`);
  }
  return removed;
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
