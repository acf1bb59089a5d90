// Typed errors of the execution layer. Every error names the stage it
// belongs to, so the CLI can print one line a person can act on.

import { formatDuration } from './timeouts.ts';

/** Base class: something went wrong while running a stage. */
export class StageError extends Error {
  readonly stage: string;
  constructor(stage: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.stage = stage;
  }
}

/** Which time limit ran out: the stage's own, or the whole run's. */
export type TimeLimitScope = 'stage' | 'run' | 'cleanup';

/**
 * A stage (or the whole run, while this stage was running) exceeded its time
 * limit. The child tree was inspected (see `diagnosticsFile`) and then killed.
 */
export class StageTimeoutError extends StageError {
  readonly limitMs: number;
  readonly scope: TimeLimitScope;
  /** Null when no process was running when the limit struck, or writing failed. */
  readonly diagnosticsFile: string | null;
  constructor(stage: string, limitMs: number, diagnosticsFile: string | null, scope: TimeLimitScope = 'stage', note?: string) {
    const what =
      scope === 'run'
        ? `the run's time limit of ${formatDuration(limitMs)} was reached during stage "${stage}"`
        : scope === 'cleanup'
          ? `cleanup of stage "${stage}" timed out after ${formatDuration(limitMs)}`
          : `stage "${stage}" timed out after ${formatDuration(limitMs)}`;
    const where = diagnosticsFile ? `; diagnostics: ${diagnosticsFile}` : note ? `; ${note}` : '';
    super(stage, what + where);
    this.limitMs = limitMs;
    this.scope = scope;
    this.diagnosticsFile = diagnosticsFile;
  }
}

/** The stage's program exited unsuccessfully (or could not be started). */
export class StageFailedError extends StageError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly logFile: string;
  /** The last lines of the stage log, without timestamps, oldest first. */
  readonly logTail: string[];
  constructor(
    stage: string,
    details: { command: string; exitCode: number | null; signal: NodeJS.Signals | null; logFile: string; logTail: string[]; startError?: Error },
  ) {
    const program = details.command;
    const how = details.startError
      ? `could not start ${program}: ${details.startError.message}`
      : details.signal
        ? `${program} was killed by ${details.signal}`
        : `${program} exited with code ${details.exitCode}`;
    const tail = details.logTail.length > 0 ? `\n  last lines of output:\n${details.logTail.map((l) => `    ${l}`).join('\n')}` : '';
    super(stage, `stage "${stage}" failed: ${how} (log: ${details.logFile})${tail}`, { cause: details.startError });
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.logFile = details.logFile;
    this.logTail = details.logTail;
  }
}

/** The stage was stopped because the run was interrupted (Ctrl-C, SIGTERM, caller abort). */
export class StageAbortedError extends StageError {
  readonly reason: string;
  constructor(stage: string, reason: string) {
    super(stage, `stage "${stage}" was stopped: ${reason}`);
    this.reason = reason;
  }
}

/**
 * A process the stage depends on (typically the VM of a builder that keeps
 * waiting for SSH) died, so the stage was ended at once instead of waiting
 * for its time limit.
 */
export class DependencyDiedError extends StageError {
  readonly reason: string;
  constructor(stage: string, reason: string) {
    super(stage, `stage "${stage}" stopped: ${reason}`);
    this.reason = reason;
  }
}

/**
 * Abort reason used when a time limit (of a step or of the whole run) expires
 * while a supervised child is running. runSupervised recognises it and takes
 * the timeout path (diagnostics first, then kill) instead of a plain abort.
 */
export class TimeLimitReached extends Error {
  readonly scope: TimeLimitScope;
  readonly limitName: string;
  readonly limitMs: number;
  constructor(scope: TimeLimitScope, limitName: string, limitMs: number) {
    super(
      scope === 'run'
        ? `the run's time limit of ${formatDuration(limitMs)} was reached`
        : `time limit of ${formatDuration(limitMs)} for "${limitName}" was reached`,
    );
    this.name = 'TimeLimitReached';
    this.scope = scope;
    this.limitName = limitName;
    this.limitMs = limitMs;
  }
}

/** A host program boxsmith needs (a shared daemon) could not be started or used: one line for the user. */
export class HostSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostSetupError';
  }
}

/** Abort reason when boxsmith itself receives SIGINT/SIGTERM/SIGHUP. */
export class InterruptedError extends Error {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'InterruptedError';
    this.signal = signal;
  }
}

/** Turns an AbortSignal's reason into a short human sentence. */
export function describeAbortReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  if (typeof reason === 'string' && reason !== '') return reason;
  return 'aborted';
}
