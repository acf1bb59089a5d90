// What a run could leave behind on this host, snapshotted before a fault and compared after it:
// processes (the run's tag, or the names of the programs boxsmith starts), mounts and loop
// devices under the test's folders, libvirt domains/volumes/networks, and libvirt/vagrant
// firewall chains. `waitUntilClean(before)` polls until nothing new is left (a watchdog or a
// cleanup may still be at work right after the fault) and returns what still is, so a test
// asserts `deepEqual(await waitUntilClean(before), [])` and a failure lists the leftovers.
//
// Also `snapshotFolder(dir)`: every entry below a folder with its size and sha256, to show
// byte for byte that the last good box and its catalog entry did not change.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { mountTable } from '../../src/exec/mounts.ts';
import { describeCommand, hasEnvEntry, listPids, readProcStat } from '../../src/exec/proc.ts';
import { RUN_ID_ENV, runTag } from '../../src/exec/run-id.ts';

/** Programs boxsmith starts (directly or through Packer/vagrant) that must not outlive a run. */
export const WATCHED_PROGRAMS = [/^packer/, /^qemu-system-/, /^apt-cacher-ng$/, /^libvirtd$/, /^virtlogd$/, /^dnsmasq$/, /^vagrant$/, /^debootstrap$/];

const LIBVIRT_FOLDERS = ['/etc/libvirt/qemu', '/var/lib/libvirt/images', '/etc/libvirt/qemu/networks'];
const SBIN_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

export interface LeftoverScope {
  /** Runs whose tagged processes are leftovers whatever their name (e.g. from `runIdsIn(logsDir)`). */
  runIds?: string[];
  /** Folders (the test's temporary ones) below which mounts and loop devices' backing files count. */
  folders?: string[];
  /**
   * Host-wide libvirt and firewall state (default true). It is shared with any VM run on this
   * host, so a test running beside one (another engineer's build) may turn it off.
   */
  libvirt?: boolean;
}

/** One thing on the host, by a key that survives re-reading (a pid with its start time, a path). */
export type HostSnapshot = Map<string, string>;

function processes(scope: LeftoverScope, into: HostSnapshot): void {
  const tags = (scope.runIds ?? []).map(runTag);
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    const info = readProcStat(pid);
    if (!info || info.state === 'Z' || info.state === 'X') continue;
    const ours = tags.some((tag) => hasEnvEntry(pid, tag));
    // A watched program tagged with another run belongs to someone else's run on this host.
    const named = WATCHED_PROGRAMS.some((pattern) => pattern.test(info.comm)) && !taggedWithOtherRun(pid, scope.runIds ?? []);
    if (ours || named) into.set(`process ${pid}@${info.startTime}`, `process ${pid} ${info.comm}${ours ? ' (tagged with the run)' : ''}: ${describeCommand(pid, info.comm)}`);
  }
}

function taggedWithOtherRun(pid: number, runIds: string[]): boolean {
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return false;
  }
  const entry = environ.split('\0').find((e) => e.startsWith(`${RUN_ID_ENV}=`));
  return entry !== undefined && !runIds.includes(entry.slice(RUN_ID_ENV.length + 1));
}

const isBelow = (file: string, folders: string[]) => folders.some((folder) => file === folder || file.startsWith(`${path.resolve(folder)}/`));

function mounts(folders: string[], into: HostSnapshot): void {
  for (const { point, type } of mountTable()) {
    if (isBelow(point, folders)) into.set(`mount ${point}`, `mount ${point} (${type})`);
  }
}

function loopDevices(folders: string[], into: HostSnapshot): void {
  if (!existsSync('/sys/block')) return;
  for (const device of readdirSync('/sys/block').filter((name) => name.startsWith('loop'))) {
    let backing: string;
    try {
      backing = readFileSync(`/sys/block/${device}/loop/backing_file`, 'utf8').trim().replace(/ \(deleted\)$/, '');
    } catch {
      continue; // not attached
    }
    if (isBelow(backing, folders)) into.set(`loop ${device}`, `loop device /dev/${device} backed by ${backing}`);
  }
}

function libvirt(into: HostSnapshot): void {
  for (const folder of LIBVIRT_FOLDERS) {
    if (!existsSync(folder)) continue;
    for (const name of readdirSync(folder)) {
      const file = path.join(folder, name);
      if (!lstatSync(file).isDirectory()) into.set(`libvirt-file ${file}`, `libvirt file ${file}`);
    }
  }
  // Asking virsh would start a socket-activated libvirtd; only ask one that already runs.
  const daemonRuns = listPids().some((pid) => readProcStat(pid)?.comm === 'libvirtd');
  if (daemonRuns) {
    const virsh = (...args: string[]) =>
      spawnSync('virsh', ['-c', 'qemu:///system', ...args], { encoding: 'utf8', timeout: 10_000 }).stdout?.split('\n').map((l) => l.trim()).filter(Boolean) ?? [];
    for (const domain of virsh('list', '--all', '--name')) into.set(`domain ${domain}`, `libvirt domain ${domain}`);
    for (const network of virsh('net-list', '--all', '--name')) into.set(`network ${network}`, `libvirt network ${network}`);
    for (const pool of virsh('pool-list', '--all', '--name')) {
      for (const line of virsh('vol-list', pool).slice(2)) {
        const volume = line.split(/\s+/)[0];
        if (volume) into.set(`volume ${pool}/${volume}`, `libvirt volume ${pool}/${volume}`);
      }
    }
  }
  const rules = spawnSync('iptables-save', [], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, PATH: SBIN_PATH } });
  for (const line of (rules.stdout ?? '').split('\n')) {
    if (/^:/.test(line) && /LIBVIRT|vagrant/i.test(line)) {
      const chain = line.slice(1).split(' ')[0] as string;
      into.set(`chain ${chain}`, `iptables chain ${chain}`);
    }
  }
}

/** QEMU's monitor folders, which builds make outside their work folder (src/build/step-packer.ts: a socket path's length). */
function monitorFolders(into: HostSnapshot): void {
  for (const name of readdirSync('/tmp').filter((entry) => entry.startsWith('boxsmith-qmp-'))) into.set(`folder /tmp/${name}`, `QEMU monitor folder /tmp/${name}`);
}

/** Everything a run could leave on this host, as key -> description. */
export function snapshotHost(scope: LeftoverScope = {}): HostSnapshot {
  const snapshot: HostSnapshot = new Map();
  processes(scope, snapshot);
  const folders = (scope.folders ?? []).map((folder) => path.resolve(folder));
  mounts(folders, snapshot);
  loopDevices(folders, snapshot);
  monitorFolders(snapshot);
  if (scope.libvirt ?? true) libvirt(snapshot);
  return snapshot;
}

/** What the host has now that it did not have in `before` (sorted descriptions). */
export function leftoversSince(before: HostSnapshot, scope: LeftoverScope = {}): string[] {
  const now = snapshotHost(scope);
  return [...now].filter(([key]) => !before.has(key)).map(([, description]) => description).sort();
}

/**
 * Polls until nothing is left that `before` did not have, or `withinMs` (default 10 s) passed;
 * returns what is still left (empty when clean).
 */
export async function waitUntilClean(before: HostSnapshot, options: LeftoverScope & { withinMs?: number } = {}): Promise<string[]> {
  const deadline = Date.now() + (options.withinMs ?? 10_000);
  for (;;) {
    const left = leftoversSince(before, options);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The run ids of the runs that logged below a logs folder (one `logs/<run id>/` each). */
export function runIdsIn(logsDir: string): string[] {
  if (!existsSync(logsDir)) return [];
  return readdirSync(logsDir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
}

/** Every entry below `dir` (relative path -> "file SIZE SHA256 MODE" / "dir MODE" / "link TARGET"), sorted. */
export function snapshotFolder(dir: string): Record<string, string> {
  const entries: Record<string, string> = {};
  const walk = (current: string) => {
    for (const name of readdirSync(current).sort()) {
      const full = path.join(current, name);
      const relative = path.relative(dir, full);
      const stat = lstatSync(full);
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isSymbolicLink()) entries[relative] = `link ${readlinkSync(full)}`;
      else if (stat.isDirectory()) {
        entries[relative] = `dir ${mode}`;
        walk(full);
      } else entries[relative] = `file ${stat.size} ${createHash('sha256').update(readFileSync(full)).digest('hex')} ${mode}`;
    }
  };
  walk(dir);
  return entries;
}
