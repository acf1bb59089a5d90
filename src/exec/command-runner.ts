// The programs one pipeline step runs, all through the supervisor: each in its own process group,
// logged to the step's log file, under what is left of the step's time limit.
import path from 'node:path';
import { runSupervised, type RunResult, type SuperviseOptions } from './supervise.ts';
import type { Watchdog } from './watchdog.ts';

export interface CommandRunnerOptions {
  stage: string;
  logDir: string;
  signal: AbortSignal;
  /** Epoch ms when the step's time limit expires. */
  deadline: number;
  watchdog?: Watchdog;
  onLine?: (line: string) => void;
  consoleLogs?: string[];
  /** Between SIGTERM and SIGKILL when a command is stopped. */
  graceMs?: number;
}

export type CommandOptions = Partial<Pick<SuperviseOptions, 'cwd' | 'env' | 'watch' | 'watchIntervalMs' | 'allowFailure' | 'leftovers' | 'consoleLogs' | 'graceMs'>> & {
  /** A tighter limit than the rest of the step. */
  timeoutMs?: number;
  /** Capture stdout (the log still gets it). */
  capture?: boolean;
  /** Sees each line too, besides the runner's own line handler. */
  onLine?: (line: string) => void;
  /** Stops this command alone (the step's signal stops it too). */
  signal?: AbortSignal;
};

export class CommandRunner {
  constructor(readonly options: CommandRunnerOptions) {}

  get logFile(): string {
    return path.join(this.options.logDir, `${this.options.stage}.log`);
  }

  async run(command: string, args: string[], options: CommandOptions = {}): Promise<RunResult & { stdout: string }> {
    const remaining = Math.max(1000, this.options.deadline - Date.now());
    const stdout: string[] = [];
    const { timeoutMs, capture, onLine, signal, ...rest } = options;
    const result = await runSupervised({
      stage: this.options.stage,
      command,
      args,
      logFile: this.logFile,
      diagnosticsDir: this.options.logDir,
      timeoutMs: Math.min(remaining, timeoutMs ?? remaining),
      signal: signal ? AbortSignal.any([this.options.signal, signal]) : this.options.signal,
      ...(this.options.watchdog ? { watchdog: this.options.watchdog } : {}),
      ...(this.options.consoleLogs ? { consoleLogs: this.options.consoleLogs } : {}),
      ...(this.options.graceMs !== undefined ? { graceMs: this.options.graceMs } : {}),
      onLine: (line, stream) => {
        if (capture && stream === 'stdout') stdout.push(line);
        onLine?.(line);
        this.options.onLine?.(line);
      },
      ...rest,
    });
    return { ...result, stdout: stdout.join('\n') };
  }
}
