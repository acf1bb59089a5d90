// The registry of this process's live supervised tasks and of the run ids it has used, and the
// two ways of ending all of a run at once: forceKillAllSupervised (the second Ctrl-C: synchronous,
// SIGKILL) and terminateRunProcesses (the end of a run, for processes kept with leftovers: 'keep':
// SIGTERM, grace, SIGKILL).
import { runCgroups } from './cgroup.ts';
import { DEFAULT_GRACE_MS, stopProcesses } from './kill-escalation.ts';
import { describeCommand, findProcessesWithEnv, sendSignal } from './proc.ts';
import { runTag } from './run-id.ts';
import type { SupervisedTask } from './supervised-task.ts';
import { runProcesses } from './task-processes.ts';

const liveTasks = new Set<SupervisedTask>();
const runIdsInUse = new Set<string>();

/** A run id a child was started with: forceKillAllSupervised also ends what carries it. */
export function noteRunId(runId: string): void {
  runIdsInUse.add(runId);
}

/** Registers a started task; call the returned function once it has ended. */
export function addLiveTask(task: SupervisedTask): () => void {
  liveTasks.add(task);
  return () => liveTasks.delete(task);
}

/**
 * Second Ctrl-C: SIGKILL every supervised child's group, cgroup and tagged
 * stragglers, plus every process carrying a run id this process used (kept
 * leftovers, diagnostics helpers). Synchronous, for use in a signal handler
 * right before exiting. Returns the number of stages that were running.
 */
export function forceKillAllSupervised(): number {
  const count = liveTasks.size;
  for (const task of liveTasks) task.forceKill();
  for (const runId of runIdsInUse) {
    for (const cgroup of runCgroups(runId)) cgroup.kill();
    for (const info of findProcessesWithEnv(runTag(runId))) sendSignal(info.pid, 'SIGKILL');
  }
  return count;
}

/**
 * Ends everything still carrying the run's tag (SIGTERM, grace, SIGKILL) and
 * removes the run's cgroups. Call it at the end of a run, before
 * Watchdog.goodbye(), to get rid of processes kept with leftovers: 'keep'.
 * Returns the processes that were found.
 */
export async function terminateRunProcesses(runId: string, options: { graceMs?: number } = {}): Promise<Array<{ pid: number; command: string }>> {
  const cgroups = runCgroups(runId);
  let described: Array<{ pid: number; command: string }> = [];
  await stopProcesses(
    {
      live: () => runProcesses(runId, cgroups),
      signal: (signal, members) => {
        for (const p of members) sendSignal(p.pid, signal);
      },
      killCgroups: () => {
        for (const cgroup of cgroups) cgroup.kill();
      },
    },
    options.graceMs ?? DEFAULT_GRACE_MS,
    { terminating: (live) => (described = live.map((p) => ({ pid: p.pid, command: describeCommand(p.pid, p.comm) }))) },
  );
  for (const cgroup of cgroups) cgroup.remove();
  return described;
}
