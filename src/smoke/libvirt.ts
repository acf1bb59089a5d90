// libvirt for vagrant-libvirt, started by boxsmith where no libvirtd runs (containers and CI
// machines have no systemd to start it): virtlogd and libvirtd, shared by the smoke tests of the
// host's boxsmith runs through leases (src/exec/shared-daemon.ts) and stopped by the last of them,
// which also removes the NAT networks and firewall chains the smoke tests made. Each run removes
// the storage volumes of its own domain (each smoke test keeps its box image and disks in a storage
// pool of its own). A libvirtd that was already running is used and left as it was found. A
// libvirtd that dies while runs hold it is started again by the next run that asks, which then
// cleans up the domains the dead one left running.
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCaptured } from '../exec/captured.ts';
import { StageAbortedError } from '../exec/errors.ts';
import { leaseSharedDaemon, spawnHostDaemon, type DaemonProcess, type DaemonRecord, type SharedDaemonLease } from '../exec/shared-daemon.ts';
import { findExecutable } from '../exec/tools.ts';
import type { Watchdog } from '../exec/watchdog.ts';
import { listPids, sendSignal, sleep } from '../exec/proc.ts';

export const LIBVIRT_URI = 'qemu:///system';
const SBIN_PATH = { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

export interface LibvirtState {
  networks: string[];
  volumes: string[];
  iptablesChains: string[];
}

export interface LibvirtStartOptions {
  logDir: string;
  /** The run's domain: its volumes start with its name. */
  domain: string;
  runId?: string;
  watchdog?: Watchdog;
  signal?: AbortSignal;
  /** The leases' state folder; the host-wide one by default. */
  stateDir?: string;
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
    private readonly options: LibvirtStartOptions,
    private readonly leases: SharedDaemonLease<LibvirtInfo>[],
    /** This run's view when it began: volumes it adds are found against it. */
    private readonly before: LibvirtState,
  ) {}

  /** What serves this run: boxsmith's daemons (perhaps started by another run) or a libvirtd found running. */
  get description(): string {
    const libvirtd = this.leases.at(-1)!.record.processes[1];
    return libvirtd ? `virtlogd and libvirtd started by boxsmith (libvirtd pid ${libvirtd.pid}, shared by the runs of this host)` : 'the libvirtd already running';
  }

  static async start(options: LibvirtStartOptions): Promise<LibvirtDaemons> {
    const lease = await LibvirtDaemons.lease(options);
    return new LibvirtDaemons(options, [lease], await libvirtState());
  }

  private static lease(options: LibvirtStartOptions): Promise<SharedDaemonLease<LibvirtInfo>> {
    return leaseSharedDaemon<LibvirtInfo>({
      dir: options.stateDir ?? libvirtStateDir(),
      start: (crashed) => startDaemons(options, crashed),
      hooks: import.meta.url,
      ...(options.runId ? { runId: options.runId } : {}),
      ...(options.watchdog ? { watchdog: options.watchdog } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /**
   * libvirtd again, if it died under this run: a new lease starts it, and it takes back the
   * domains still running, so that they can be destroyed. Says whether it had to.
   */
  async revive(): Promise<boolean> {
    if (await libvirtAnswers()) return false;
    this.leases.push(await LibvirtDaemons.lease(this.options));
    return true;
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
        if (this.before.volumes.includes(volume) || !name.startsWith(this.options.domain)) continue;
        if ((await virsh(['vol-delete', '--pool', pool, name])).exitCode === 0) removed.push(`volume ${volume}`);
      }
    } finally {
      for (const lease of this.leases) removed.push(...(await lease.release()).removed);
    }
    return removed;
  }
}

async function startDaemons(options: LibvirtStartOptions, crashed?: DaemonRecord<LibvirtInfo>): Promise<Omit<DaemonRecord<LibvirtInfo>, 'since' | 'hooks'>> {
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
  // After a crash, what was there before is what the first start saw: the networks the smoke
  // tests made since are still theirs to remove.
  return { processes, info: { started: true, before: crashed?.info.started ? crashed.info.before : await libvirtState() } };
}

/** The last holder's cleanup while libvirtd still runs (also run by a dead run's watchdog): the networks the smoke tests made. */
export async function beforeStop(record: DaemonRecord<LibvirtInfo>): Promise<string[]> {
  if (!record.info.started) return [];
  const removed: string[] = [];
  const now = await libvirtState().catch(() => undefined);
  for (const network of now?.networks.filter((n) => !record.info.before.networks.includes(n)) ?? []) {
    await virsh(['net-destroy', network]);
    if ((await virsh(['net-undefine', network])).exitCode === 0) removed.push(`network ${network}`);
  }
  return removed;
}

/** Once the daemons stopped: the firewall chains libvirtd made for those networks. */
export async function afterStop(record: DaemonRecord<LibvirtInfo>): Promise<string[]> {
  if (!record.info.started) return [];
  return [...endCapabilityProbes(), ...(await removeFirewallChains(record.info.before.iptablesChains))];
}

/**
 * The QEMU processes a libvirtd starts (daemonized, so not its children) to learn what QEMU can
 * do: one stopped while it probed leaves them waiting on their monitor socket for good.
 */
export function endCapabilityProbes(qmpPrefix = '/var/lib/libvirt/qemu/qmp-'): string[] {
  const ended: string[] = [];
  for (const pid of listPids()) {
    let commandLine: string;
    try {
      commandLine = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      continue;
    }
    if (/^(\S*\/)?qemu-system-[^\0]*\0/.test(commandLine) && commandLine.includes(`\0-qmp\0unix:${qmpPrefix}`) && sendSignal(pid, 'SIGKILL')) {
      ended.push(`QEMU capability probe ${pid} of the stopped libvirtd`);
    }
  }
  return ended;
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
