// What every boxsmith run that starts programs has: a run id, its log folder, a watchdog that
// outlives boxsmith, and Ctrl-C/SIGTERM handling that stops the run with its cleanups. When the run
// ends, nothing it started is left running.
import path from 'node:path';
import { newRunId } from '../exec/run-id.ts';
import { installInterruptHandlers } from '../exec/signals.ts';
import { terminateRunProcesses } from '../exec/supervise.ts';
import { Watchdog } from '../exec/watchdog.ts';

export interface RunContext {
  runId: string;
  logRoot: string;
  signal: AbortSignal;
  watchdog: Watchdog;
}

export async function withRunContext<T>(
  logsDir: string,
  work: (run: RunContext) => Promise<T>,
): Promise<{ value: T; interruptExitCode: number | null; logRoot: string }> {
  const runId = newRunId();
  const logRoot = path.join(logsDir, runId);
  const controller = new AbortController();
  const interrupts = installInterruptHandlers(controller);
  const watchdog = await Watchdog.start({ runId, logDir: logRoot });
  try {
    const value = await work({ runId, logRoot, signal: controller.signal, watchdog });
    return { value, interruptExitCode: interrupts.exitCode, logRoot };
  } finally {
    await terminateRunProcesses(runId);
    await watchdog.goodbye();
    interrupts.dispose();
  }
}
