// How a supervised task's ending becomes runSupervised's answer: on exit, its leftovers stopped
// or kept and the RunResult (or StageFailedError); at a time limit, diagnostics first
// (diagnostics.ts, before anything is signalled), then the stop and StageTimeoutError; on an
// abort, a dead dependency or a failed watch callback, the stop and the matching error.
import { writeTimeoutDiagnostics } from './diagnostics.ts';
import { DependencyDiedError, StageAbortedError, StageError, StageFailedError, StageTimeoutError } from './errors.ts';
import { describeCommand, describeProcesses, snapshotProcesses } from './proc.ts';
import type { Ending, SupervisedTask } from './supervised-task.ts';
import type { RunResult, SuperviseOptions } from './supervise-types.ts';
import { taskEnvironment } from './task-spawn.ts';
import { formatDuration } from './timeouts.ts';

const DEFAULT_GDB_TIMEOUT_MS = 20_000;

/** Resolves with the result of an exit runSupervised accepts; throws the stage's error otherwise, with nothing of the task left running. */
export async function finishTask(
  task: SupervisedTask,
  ending: Ending,
  opts: SuperviseOptions,
  context: { graceMs: number; startedAt: Date },
): Promise<RunResult> {
  const { log } = task;
  const elapsed = (): string => formatDuration(Date.now() - context.startedAt.getTime());
  switch (ending.kind) {
    case 'exited': {
      const status = task.exitStatus ?? { code: null, signal: null };
      const leftovers = task.aliveMembers();
      const described = leftovers.map((p) => ({ pid: p.pid, command: describeCommand(p.pid, p.comm) }));
      let leftoversKilled: RunResult['leftoversKilled'] = [];
      let leftoversKept: RunResult['leftoversKept'] = [];
      if (leftovers.length > 0 && opts.leftovers === 'keep') {
        leftoversKept = described;
        log.note(`${opts.command} exited; keeping ${leftovers.length} process(es) it started: ${describeProcesses(leftovers)}`);
        await task.waitForOutputClosed(200);
      } else if (leftovers.length > 0) {
        leftoversKilled = described;
        await task.terminate(context.graceMs, `${opts.command} exited but left ${leftovers.length} process(es) running`);
      } else {
        await task.waitForOutputClosed();
      }
      log.note(
        `${opts.command} ${status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`} after ${elapsed()}`,
      );
      const result: RunResult = {
        stage: opts.stage,
        command: opts.command,
        args: opts.args,
        pid: task.pid,
        exitCode: status.code,
        signal: status.signal,
        durationMs: Date.now() - context.startedAt.getTime(),
        logFile: opts.logFile,
        leftoversKilled,
        leftoversKept,
      };
      if (status.code === 0 || opts.allowFailure) return result;
      throw new StageFailedError(opts.stage, {
        command: opts.command,
        exitCode: status.code,
        signal: status.signal,
        logFile: opts.logFile,
        logTail: log.tail(20),
      });
    }
    case 'time-limit': {
      const limitDescription =
        ending.scope === 'run' ? `the run's time limit of ${formatDuration(ending.limitMs)}` : `stage time limit of ${formatDuration(ending.limitMs)}`;
      log.note(`${limitDescription} reached after ${elapsed()}: saving diagnostics before stopping the stage`);
      let diagnosticsFile: string | null = null;
      try {
        const table = snapshotProcesses();
        const result = await writeTimeoutDiagnostics({
          stage: opts.stage,
          command: opts.command,
          args: opts.args,
          runId: task.runId,
          taskId: task.taskId,
          startedAt: context.startedAt,
          limitDescription,
          rootPid: task.pid,
          rootPgid: task.pgid,
          processes: [...task.members(table).values()],
          diagnosticsDir: opts.diagnosticsDir,
          logFile: opts.logFile,
          consoleLogs: opts.consoleLogs ?? [],
          gdbTimeoutMs: opts.gdbTimeoutMs ?? DEFAULT_GDB_TIMEOUT_MS,
          helperEnv: taskEnvironment({}, task.runId, `${task.runId}.diagnostics`),
          note: (text) => log.note(text),
        });
        diagnosticsFile = result.file;
      } catch (error) {
        log.note(`could not write diagnostics: ${error instanceof Error ? error.message : String(error)}`);
      }
      await task.terminate(context.graceMs, 'time limit');
      throw new StageTimeoutError(opts.stage, ending.limitMs, diagnosticsFile, ending.scope, diagnosticsFile ? undefined : `diagnostics could not be written (see ${opts.logFile})`);
    }
    case 'aborted': {
      log.note(`stopping: ${ending.reason}`);
      await task.terminate(context.graceMs, 'stopping');
      throw new StageAbortedError(opts.stage, ending.reason);
    }
    case 'dependency-died': {
      log.note(`ending the stage: ${ending.reason}`);
      await task.terminate(context.graceMs, 'dependency died');
      throw new DependencyDiedError(opts.stage, ending.reason);
    }
    case 'watch-failed': {
      const message = ending.error instanceof Error ? ending.error.message : String(ending.error);
      log.note(`watch callback failed, ending the stage: ${message}`);
      await task.terminate(context.graceMs, 'watch callback failed');
      throw new StageError(opts.stage, `stage "${opts.stage}": watch callback failed: ${message}`, { cause: ending.error });
    }
  }
}
