// The one way boxsmith runs an external program (Packer, QEMU, VBoxManage,
// vagrant, ssh, ...). Every child:
//   - runs in its own session and process group (setsid), stdin closed;
//   - carries BOXSMITH_RUN_ID / BOXSMITH_TASK_ID in its environment, so its
//     descendants are found even after they leave the group (setsid, double
//     fork), and runs in its own cgroup v2 where the host allows it;
//   - has its stdout/stderr written to the stage log with timestamps and
//     passed line by line to the progress display;
//   - has a time limit. At the limit boxsmith first saves diagnostics (process
//     tree, wait channels, kernel stacks, gdb backtraces, Go goroutine dumps,
//     VM console), then SIGTERMs the group and the stragglers, waits the grace
//     period, SIGKILLs whatever is left and reaps.
// Nothing it started outlives the stage unless the caller asks for that.
//
// This file is the entry point and the order of things; the parts are in
// task-spawn.ts (the start), supervised-task.ts (the running child and what
// ends it), task-processes.ts (finding its processes), kill-escalation.ts
// (stopping them), task-outcome.ts (the result or error) and live-tasks.ts
// (all live tasks of this process, for ending a whole run).
import type { TaskCgroup } from './cgroup.ts';
import { StageAbortedError, StageTimeoutError } from './errors.ts';
import { DEFAULT_GRACE_MS } from './kill-escalation.ts';
import { addLiveTask, noteRunId } from './live-tasks.ts';
import { readProcStat, sleep } from './proc.ts';
import { defaultRunId } from './run-id.ts';
import { StageLog } from './stage-log.ts';
import { SupervisedTask, abortEnding } from './supervised-task.ts';
import type { RunResult, SuperviseOptions } from './supervise-types.ts';
import { finishTask } from './task-outcome.ts';
import { startChild, taskEnvironment } from './task-spawn.ts';
import { formatDuration } from './timeouts.ts';

export { forceKillAllSupervised, terminateRunProcesses } from './live-tasks.ts';
export type { RunResult, StageProcess, SuperviseOptions, SupervisedTaskView } from './supervise-types.ts';

let taskCounter = 0;

/**
 * Runs one external program under supervision (see the file comment).
 * Resolves when it exits 0 (or non-zero with allowFailure). Rejects with
 * StageTimeoutError, StageFailedError, StageAbortedError or DependencyDiedError;
 * when it rejects, nothing of the child is running any more.
 */
export async function runSupervised(opts: SuperviseOptions): Promise<RunResult> {
  if (!(opts.timeoutMs > 0)) throw new RangeError(`stage "${opts.stage}": timeoutMs must be a positive number of milliseconds (got ${opts.timeoutMs})`);
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  if (!(graceMs >= 0)) throw new RangeError(`stage "${opts.stage}": graceMs must not be negative (got ${graceMs})`);
  const runId = opts.runId ?? opts.watchdog?.runId ?? defaultRunId();
  noteRunId(runId);
  const taskNumber = ++taskCounter;
  const taskId = `${runId}.${taskNumber}`;

  if (opts.signal?.aborted) {
    const ending = abortEnding(opts.signal.reason);
    if (ending.kind === 'time-limit') throw new StageTimeoutError(opts.stage, ending.limitMs, null, ending.scope, 'it had not started yet');
    throw new StageAbortedError(opts.stage, ending.kind === 'aborted' ? ending.reason : 'aborted');
  }

  const env = taskEnvironment(opts.env, runId, taskId);
  const cwd = opts.cwd ?? process.cwd();
  const log = new StageLog(opts.logFile, opts.onLine);
  try {
    log.note(`stage "${opts.stage}": ${[opts.command, ...opts.args].join(' ')}`);
    log.note(`cwd ${cwd}; time limit ${formatDuration(opts.timeoutMs)}, grace ${formatDuration(graceMs)}; run ${runId}, task ${taskId}`);
    const { child, pid, cgroup, startedAt } = await startChild(opts, { runId, taskNumber, env, cwd, log });

    const task = new SupervisedTask({ stage: opts.stage, runId, taskId, child, pid, cgroup, log });
    const removeLiveTask = addLiveTask(task);
    log.note(`started pid ${task.pid} (process group ${task.pgid}${cgroup ? `, cgroup ${cgroup.path}` : ''})`);
    const leader = readProcStat(task.pid);
    opts.watchdog?.register(leader ? { type: 'pgid', pgid: task.pgid, leaderStartTime: leader.startTime } : { type: 'pgid', pgid: task.pgid });
    if (cgroup) opts.watchdog?.register({ type: 'cgroup', path: cgroup.path });

    let keptProcesses = false;
    try {
      const ending = await task.waitForEnding(opts);
      const outcome = await finishTask(task, ending, opts, { graceMs, startedAt });
      keptProcesses = outcome.leftoversKept.length > 0;
      return outcome;
    } finally {
      removeLiveTask();
      if (!keptProcesses) {
        opts.watchdog?.unregister({ type: 'pgid', pgid: task.pgid });
        if (cgroup && (await removeCgroup(cgroup))) opts.watchdog?.unregister({ type: 'cgroup', path: cgroup.path });
        else if (cgroup) log.note(`cgroup ${cgroup.path} could not be removed yet; the watchdog or terminateRunProcesses will`);
      }
    }
  } finally {
    log.close();
  }
}

/** rmdir fails while the kernel is still releasing just-killed members; retry for a moment. */
async function removeCgroup(cgroup: TaskCgroup): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    if (cgroup.remove()) return true;
    await sleep(50);
  }
  return false;
}
