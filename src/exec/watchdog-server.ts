// The watchdog process's logic (entry point: watchdog-main.ts). It holds the
// registry of what the run started and, when boxsmith disappears without a
// goodbye, ends all of it: every process carrying the run's tag, registered
// process groups, daemons, QEMU processes and cgroups (SIGTERM, grace,
// SIGKILL), then registered VirtualBox/VMware/libvirt VMs through their own
// tools, and releases the run's leases on shared host daemons (the last
// holder's release stops the daemon). Every action goes to watchdog.log in the
// run's log folder.

import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { TaskCgroup, runCgroups } from './cgroup.ts';
import { runHelperTool, type HelperToolOptions } from './helper-tool.ts';
import {
  addDescendants,
  describeProcesses,
  findProcessesWithEnv,
  isAlive,
  sendSignal,
  signalProcessGroup,
  sleep,
  snapshotProcesses,
  type ProcInfo,
} from './proc.ts';
import { stopProcesses } from './kill-escalation.ts';
import { mountsBelow } from './mounts.ts';
import { formatDuration } from './timeouts.ts';
import { WATCHDOG_LOG_NAME, parseWatchdogMessage, watchdogTargetKey, type WatchdogTarget } from './watchdog.ts';
import { runTag } from './run-id.ts';
import { releaseLeases } from './shared-daemon.ts';
import { tearDownHypervisorVm } from './vm-teardown.ts';

export interface WatchdogServerOptions {
  runId: string;
  logDir: string;
  graceMs: number;
  /** boxsmith's pid and start time: a second way to notice its death, in case the pipe is held open by a leaked descendant. */
  parentPid?: number;
  parentStartTime?: number;
  /** Time limit for each VBoxManage/vmrun/virsh call. */
  toolTimeoutMs?: number;
}

const PARENT_POLL_MS = 1000;
const DEFAULT_TOOL_TIMEOUT_MS = 60_000;

export class WatchdogServer {
  private readonly options: WatchdogServerOptions;
  private readonly logFile: string;
  private readonly registry = new Map<string, WatchdogTarget>();
  private finished = false;

  constructor(options: WatchdogServerOptions) {
    this.options = options;
    mkdirSync(options.logDir, { recursive: true });
    this.logFile = join(options.logDir, WATCHDOG_LOG_NAME);
  }

  log(text: string): void {
    try {
      appendFileSync(this.logFile, `${new Date().toISOString()} [watchdog ${process.pid}] ${text}\n`);
    } catch {
      // Nowhere else to report; keep doing the job.
    }
  }

  get registered(): WatchdogTarget[] {
    return [...this.registry.values()];
  }

  /** Handles one protocol line. Returns 'goodbye' when the run ended normally. */
  handleLine(line: string): 'goodbye' | void {
    if (line.trim() === '') return;
    let command;
    try {
      command = parseWatchdogMessage(line);
    } catch (error) {
      this.log(`ignored message: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (command.action === 'goodbye') return 'goodbye';
    const key = watchdogTargetKey(command.target);
    if (command.action === 'register') {
      this.registry.set(key, command.target);
      this.log(`registered ${key}`);
    } else if (this.registry.delete(key)) {
      this.log(`unregistered ${key}`);
    }
  }

  /**
   * Serves until boxsmith says goodbye (returns 0) or disappears (tears the
   * run down, returns 0 if nothing survived, else 1).
   */
  async serve(input: Readable): Promise<number> {
    const lines = createInterface({ input });
    let goodbye = false;
    const inputClosed = new Promise<string>((resolve) => {
      lines.on('line', (line) => {
        if (this.handleLine(line) === 'goodbye') {
          goodbye = true;
          resolve('goodbye');
        }
      });
      lines.once('close', () => resolve('the pipe from boxsmith closed without goodbye'));
      input.once('error', (error) => resolve(`the pipe from boxsmith failed (${error.message})`));
    });
    const parentGone = new Promise<string>((resolve) => {
      const { parentPid, parentStartTime } = this.options;
      if (parentPid === undefined) return;
      const timer = setInterval(() => {
        if (!isAlive(parentPid, parentStartTime)) {
          clearInterval(timer);
          resolve(`boxsmith (pid ${parentPid}) is gone`);
        }
      }, PARENT_POLL_MS);
      void inputClosed.then(() => clearInterval(timer));
    });
    const reason = await Promise.race([inputClosed, parentGone]);
    lines.close();
    if (goodbye) {
      const left = this.registered.map(watchdogTargetKey);
      this.log(`goodbye: run ${this.options.runId} ended normally${left.length > 0 ? `; still registered (left alone): ${left.join(', ')}` : ''}`);
      return 0;
    }
    return (await this.teardown(reason)) ? 0 : 1;
  }

  /** Kills every process of the run and tears down registered VMs. Returns true when nothing survived. */
  async teardown(reason: string): Promise<boolean> {
    if (this.finished) return true;
    this.finished = true;
    const { runId, graceMs } = this.options;
    this.log(`tearing down run ${runId}: ${reason}`);

    // VMs first, while the daemons that manage them (libvirtd, VBoxSVC) may still be running as
    // processes of the run: once those are killed, `virsh undefine` and the like cannot work.
    for (const target of this.registered) {
      if (target.type === 'vm' && target.kind !== 'qemu') await tearDownHypervisorVm(target, this.toolOptions);
      if (target.type === 'libvirt') await this.tearDownLibvirt(target);
    }
    // A run's storage pool holds its domains' disks: after them.
    for (const target of this.registered) {
      if (target.type === 'libvirt-pool') {
        await this.runTool('virsh', [...(target.connect ? ['-c', target.connect] : []), 'pool-destroy', target.pool], `libvirt pool "${target.pool}"`);
      }
    }

    const { found } = await stopProcesses(
      {
        live: () => this.collectProcesses(),
        signal: (signal, members) => this.signalAll(signal, members),
        killCgroups: () => {
          for (const cgroup of this.cgroups()) cgroup.kill();
        },
      },
      graceMs,
      {
        terminating: (live) => this.log(`sending SIGTERM to ${live.length} process(es): ${describeProcesses(live)}`),
        killing: (live) => this.log(`still running after ${formatDuration(graceMs)}, sending SIGKILL: ${live.map((p) => `${p.pid} (${p.comm})`).join(', ')}`),
      },
    );
    if (found.length === 0) this.log('no process of the run is running');

    // VM tools may have started processes of their own that carry the tag; one more sweep.
    const late = this.collectProcesses();
    for (const p of late) sendSignal(p.pid, 'SIGKILL');
    if (late.length > 0) await sleep(200);

    for (const cgroup of this.cgroups()) {
      if (!cgroup.remove()) this.log(`could not remove cgroup ${cgroup.path} (processes remain)`);
    }
    // The run's leases on shared daemons last: libvirtd may be one (the VMs needed it), and the
    // lock they take may be busy a while with another run starting a daemon.
    await this.releaseLeases();
    const survivors = this.collectProcesses();
    if (survivors.length > 0) {
      this.log(`could not kill (uninterruptible sleep?): ${survivors.map((p) => `${p.pid} (${p.comm}, state ${p.state})`).join(', ')}`);
      return false;
    }
    // With no process left to hold them: the run's mounts (a loop mount frees its loop device as
    // it goes), then its scratch folders, never through a mount that is still there.
    let clean = true;
    for (const target of this.registered) {
      if (target.type === 'mounts') clean = (await this.unmountBelow(target.path)) && clean;
    }
    for (const target of this.registered) {
      if (target.type !== 'scratch' || !existsSync(target.path)) continue;
      const mounted = mountsBelow(target.path);
      if (mounted.length > 0) {
        this.log(`kept ${target.path}: still mounted below it: ${mounted.join(', ')}`);
        clean = false;
        continue;
      }
      try {
        rmSync(target.path, { recursive: true, force: true });
        this.log(`removed the run's scratch folder ${target.path}`);
      } catch (error) {
        this.log(`could not remove ${target.path}: ${(error as Error).message}`);
        clean = false;
      }
    }
    this.log(`teardown of run ${runId} complete: no process of the run is left${clean ? '' : ' (see above for what could not be cleaned)'}`);
    return clean;
  }

  private async unmountBelow(dir: string): Promise<boolean> {
    for (const point of mountsBelow(dir)) await this.runTool('umount', ['-l', point], `mount ${point}`);
    const left = mountsBelow(dir);
    if (left.length > 0) this.log(`still mounted below ${dir}: ${left.join(', ')}`);
    return left.length === 0;
  }

  private cgroups(): TaskCgroup[] {
    const byPath = new Map<string, TaskCgroup>();
    for (const target of this.registered) if (target.type === 'cgroup') byPath.set(target.path, TaskCgroup.at(target.path));
    // Also the run's cgroups found by name, in case a registration was lost with boxsmith.
    for (const cgroup of runCgroups(this.options.runId)) byPath.set(cgroup.path, cgroup);
    return [...byPath.values()];
  }

  /** Live processes of the run: tagged, in registered groups/cgroups, registered pids, and all their descendants. */
  private collectProcesses(): ProcInfo[] {
    const table = snapshotProcesses();
    const found = new Map<number, ProcInfo>();
    for (const p of findProcessesWithEnv(runTag(this.options.runId), table)) found.set(p.pid, p);
    const groups = new Set<number>();
    for (const target of this.registered) {
      if (target.type === 'pgid' && this.isOriginalGroup(target, table)) groups.add(target.pgid);
      if (target.type === 'pid' || (target.type === 'vm' && target.kind === 'qemu')) {
        const info = table.get(target.pid);
        // A recycled pid belongs to someone else: only kill the process that was registered.
        if (info && (target.startTime === undefined || info.startTime === target.startTime)) found.set(info.pid, info);
      }
    }
    const cgroupPids = new Set(this.cgroups().flatMap((cgroup) => cgroup.pids()));
    for (const info of table.values()) {
      if (groups.has(info.pgid) || cgroupPids.has(info.pid)) found.set(info.pid, info);
    }
    addDescendants(found, table);
    found.delete(process.pid);
    return [...found.values()].filter((p) => p.state !== 'Z' && p.state !== 'X');
  }

  /**
   * A registered group may be signalled as a whole only while it is still
   * the group boxsmith registered: its number is in use by live members, and
   * if its leader is alive, that leader is the registered one (not a recycled pid).
   */
  private isOriginalGroup(target: Extract<WatchdogTarget, { type: 'pgid' }>, table: Map<number, ProcInfo>): boolean {
    const leader = table.get(target.pgid);
    if (leader && target.leaderStartTime !== undefined && leader.startTime !== target.leaderStartTime) return false;
    return [...table.values()].some((p) => p.pgid === target.pgid && p.state !== 'Z');
  }

  private signalAll(signal: NodeJS.Signals, processes: ProcInfo[]): void {
    const liveGroups = new Set(processes.map((p) => p.pgid));
    for (const target of this.registered) {
      // collectProcesses() vetted the groups; signal only those it found members of.
      if (target.type === 'pgid' && liveGroups.has(target.pgid)) signalProcessGroup(target.pgid, signal);
    }
    for (const p of processes) sendSignal(p.pid, signal);
  }

  private async releaseLeases(): Promise<void> {
    const byDir = new Map<string, string[]>();
    for (const target of this.registered) {
      if (target.type === 'lease') byDir.set(target.dir, [...(byDir.get(target.dir) ?? []), target.id]);
    }
    for (const [dir, ids] of byDir) {
      try {
        const { stopped } = await releaseLeases(dir, ids);
        this.log(`released lease(s) ${ids.join(', ')} on ${dir}: ${stopped ? 'no live lease remained, the daemon was stopped' : 'other runs still hold it'}`);
      } catch (error) {
        this.log(`could not release lease(s) on ${dir}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  private async tearDownLibvirt(target: Extract<WatchdogTarget, { type: 'libvirt' }>): Promise<void> {
    const connect = target.connect ? ['-c', target.connect] : [];
    await this.runTool('virsh', [...connect, 'destroy', target.domain], `libvirt domain "${target.domain}"`);
    await this.runTool('virsh', [...connect, 'undefine', target.domain, '--remove-all-storage'], `libvirt domain "${target.domain}"`);
  }

  /** Hypervisor tools and umount: each with a time limit, its outcome in watchdog.log. */
  private get toolOptions(): HelperToolOptions {
    return { timeoutMs: this.options.toolTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS, note: (line) => this.log(line) };
  }

  private runTool(tool: string, args: string[], what: string): Promise<void> {
    return runHelperTool(tool, args, what, this.toolOptions);
  }
}
