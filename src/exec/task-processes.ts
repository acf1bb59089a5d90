// Finding the processes of a supervised task, and of a whole run, in the process table.
// A task's processes are its process group, whatever carries its BOXSMITH_TASK_ID tag (found
// after a setsid or a double fork), the members of its cgroup, and the descendants of all of
// those; a run's are whatever carries its BOXSMITH_RUN_ID tag and the members of its cgroups.
// boxsmith itself and its ancestors are never among them, whatever their environment says.
import type { TaskCgroup } from './cgroup.ts';
import { addDescendants, findProcessesWithEnv, hasEnvEntry, selfAndAncestors, sendSignal, signalProcessGroup, snapshotProcesses, type ProcInfo } from './proc.ts';
import { runTag } from './run-id.ts';

/** How a task's processes are recognised. */
export interface TaskScope {
  /** The child's process group (detached: true makes it the group's and session's leader). */
  readonly pgid: number;
  /** `BOXSMITH_TASK_ID=<task id>`, as it appears in /proc/PID/environ. */
  readonly taskTag: string;
  readonly cgroup: TaskCgroup | null;
}

/** Every process of the task, zombies included, keyed by pid. */
export function taskMembers(scope: TaskScope, table: Map<number, ProcInfo> = snapshotProcesses()): Map<number, ProcInfo> {
  const protectedPids = selfAndAncestors();
  const cgroupPids = new Set(scope.cgroup?.pids() ?? []);
  const members = new Map<number, ProcInfo>();
  for (const info of table.values()) {
    if (protectedPids.has(info.pid)) continue;
    if (info.pgid === scope.pgid || cgroupPids.has(info.pid) || hasEnvEntry(info.pid, scope.taskTag)) members.set(info.pid, info);
  }
  addDescendants(members, table);
  for (const pid of protectedPids) members.delete(pid);
  return members;
}

/** The task's processes that have not exited (zombies have; they only await reaping). */
export function liveTaskMembers(scope: TaskScope): ProcInfo[] {
  return [...taskMembers(scope).values()].filter((p) => p.state !== 'Z' && p.state !== 'X');
}

/**
 * Signals the task's process group, and individually every member outside it.
 * The group is signalled only while one of its members was just seen
 * alive: the number of an emptied group can be recycled for someone else's.
 */
export function signalTaskMembers(scope: TaskScope, signal: NodeJS.Signals, members: ProcInfo[]): void {
  if (members.some((member) => member.pgid === scope.pgid)) signalProcessGroup(scope.pgid, signal);
  for (const member of members) if (member.pgid !== scope.pgid) sendSignal(member.pid, signal);
}

/** Live processes carrying the run's tag, and members of the given cgroups of the run. */
export function runProcesses(runId: string, cgroups: TaskCgroup[]): ProcInfo[] {
  const table = snapshotProcesses();
  const found = new Map(findProcessesWithEnv(runTag(runId), table).map((p) => [p.pid, p]));
  for (const cgroup of cgroups) {
    for (const pid of cgroup.pids()) {
      const info = table.get(pid);
      if (info && info.state !== 'Z') found.set(pid, info);
    }
  }
  return [...found.values()];
}
