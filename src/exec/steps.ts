// Pipeline stages as steps with run and cleanup, in the style of Packer's
// multistep: steps run in order; when one fails, times out or the run is
// interrupted, no further step starts, and the cleanup of every step that
// started runs in reverse order (as in multistep, cleanups also run after a
// successful run; `ctx.outcome` tells them how the run went, e.g. to keep
// an artifact only on success). Each step and each cleanup has a time limit,
// and the whole run can have one too; a step that ignores its abort signal
// is abandoned after `settleMs`, so runSteps itself can never hang.

import { StageAbortedError, StageError, StageTimeoutError, TimeLimitReached, describeAbortReason, type TimeLimitScope } from './errors.ts';
import { RUN_TIMEOUT_KEY, formatDuration, setLongTimeout } from './timeouts.ts';

export interface StepContext {
  readonly stepName: string;
  /**
   * Aborted when the run is interrupted (reason: InterruptedError or the
   * caller's reason) or when this step's or the run's time limit expires
   * (reason: TimeLimitReached). Pass it to runSupervised as `signal`.
   */
  readonly signal: AbortSignal;
  readonly timeLimitMs: number;
  /** Epoch ms at which the step's time limit expires. */
  readonly deadline: number;
  /** Time left before the step's limit; a good `timeoutMs` for the step's last child. */
  remainingMs(): number;
}

export type StepStatus = 'succeeded' | 'failed' | 'timed-out' | 'aborted';

export interface CleanupContext extends StepContext {
  /** How the run went: 'succeeded' when every step succeeded. */
  readonly outcome: StepStatus;
  /** The error the run is failing with (undefined on success). */
  readonly error: unknown;
}

export interface Step<S> {
  name: string;
  /** Time limit of run(); overridden by timeoutOverrides[name]; else RunStepsOptions.defaultTimeoutMs. */
  timeoutMs?: number;
  /** Time limit of cleanup(); default RunStepsOptions.cleanupTimeoutMs. */
  cleanupTimeoutMs?: number;
  run(state: S, ctx: StepContext): Promise<void>;
  cleanup?(state: S, ctx: CleanupContext): Promise<void>;
}

export interface StepRecord {
  name: string;
  status: StepStatus;
  timeLimitMs: number;
  startedAt: Date;
  durationMs: number;
  error?: unknown;
  cleanup?: { status: 'succeeded' | 'failed' | 'timed-out'; durationMs: number; error?: unknown };
}

export interface StepsReport {
  outcome: StepStatus;
  /** Steps that started, in run order. */
  steps: StepRecord[];
  durationMs: number;
  /** The error runSteps throws (undefined on success). */
  error?: unknown;
}

export type StepEvent =
  | { type: 'step-start'; step: string; timeLimitMs: number }
  | { type: 'step-end'; record: StepRecord }
  | { type: 'cleanup-start'; step: string }
  | { type: 'cleanup-end'; record: StepRecord };

export interface RunStepsOptions {
  /** Aborting it stops the run: the current step is aborted, then cleanups run. */
  signal?: AbortSignal;
  /** Time limit of steps that set none. With neither, runSteps refuses to start. */
  defaultTimeoutMs?: number;
  /** Per-step limits from the command line (parseTimeoutOverrides); the key "run" limits the whole run. */
  timeoutOverrides?: Record<string, number>;
  /** Time limit of all steps together (cleanups excluded). */
  runTimeoutMs?: number;
  /** Time limit of each cleanup. Default 5 min. */
  cleanupTimeoutMs?: number;
  /**
   * After a step's abort or time limit, how long to wait for run() to
   * return before abandoning it. Must cover what runSupervised does at a
   * limit (diagnostics, grace, reap). Default 120 s.
   */
  settleMs?: number;
  /** Progress events for the display. Exceptions thrown by it are ignored. */
  onEvent?: (event: StepEvent) => void;
  /** Receives the report whether the run succeeded or not (runSteps throws the original error on failure). */
  onFinish?: (report: StepsReport) => void;
}

const DEFAULT_CLEANUP_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_SETTLE_MS = 120_000;

type BoundedResult = { ok: true } | { ok: false; status: Exclude<StepStatus, 'succeeded'>; error: unknown };

/**
 * Runs the steps in order and the cleanups of the started ones in reverse.
 * Resolves with the report on success; otherwise throws the error that
 * ended the run (the step's own error, StageTimeoutError, StageAbortedError),
 * after all cleanups ran.
 */
export async function runSteps<S>(steps: readonly Step<S>[], state: S, opts: RunStepsOptions = {}): Promise<StepsReport> {
  const limits = steps.map((step) => stepTimeLimit(step, opts));
  const names = new Set<string>();
  for (const step of steps) {
    if (names.has(step.name)) throw new TypeError(`step name "${step.name}" is used twice`);
    names.add(step.name);
  }
  const runLimitMs = opts.timeoutOverrides?.[RUN_TIMEOUT_KEY] ?? opts.runTimeoutMs;
  const settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
  const emit = (event: StepEvent): void => {
    try {
      opts.onEvent?.(event);
    } catch {
      // The display must not change the outcome of the run.
    }
  };

  // The run's signal: the caller's abort, or the run's own time limit.
  const runController = new AbortController();
  const forwardAbort = (): void => runController.abort(opts.signal?.reason);
  if (opts.signal?.aborted) forwardAbort();
  else opts.signal?.addEventListener('abort', forwardAbort, { once: true });
  const cancelRunTimer =
    runLimitMs !== undefined ? setLongTimeout(() => runController.abort(new TimeLimitReached('run', RUN_TIMEOUT_KEY, runLimitMs)), runLimitMs) : () => {};

  const runStartedAt = Date.now();
  const started: Array<{ step: Step<S>; record: StepRecord }> = [];
  let failure: Exclude<BoundedResult, { ok: true }> | null = null;
  try {
    for (const [index, step] of steps.entries()) {
      const timeLimitMs = limits[index] as number;
      if (runController.signal.aborted) {
        failure = abortedBeforeStart(step.name, runController.signal.reason);
        break;
      }
      const record: StepRecord = { name: step.name, status: 'succeeded', timeLimitMs, startedAt: new Date(), durationMs: 0 };
      started.push({ step, record });
      emit({ type: 'step-start', step: step.name, timeLimitMs });
      const result = await runBounded(step.name, timeLimitMs, 'stage', runController.signal, settleMs, (ctx) => step.run(state, ctx));
      record.durationMs = Date.now() - record.startedAt.getTime();
      if (!result.ok) {
        record.status = result.status;
        record.error = result.error;
        failure = result;
      }
      emit({ type: 'step-end', record });
      if (failure) break;
    }
  } finally {
    cancelRunTimer();
    opts.signal?.removeEventListener('abort', forwardAbort);
  }

  // Cleanups are the graceful path of an interrupt, so they are not aborted by it; only their own limit bounds them.
  const outcome: StepStatus = failure?.status ?? 'succeeded';
  const neverAborted = new AbortController().signal;
  for (const { step, record } of [...started].reverse()) {
    if (!step.cleanup) continue;
    const cleanup = step.cleanup.bind(step);
    const limitMs = step.cleanupTimeoutMs ?? opts.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS;
    emit({ type: 'cleanup-start', step: step.name });
    const startedAt = Date.now();
    const result = await runBounded(step.name, limitMs, 'cleanup', neverAborted, settleMs, (ctx) =>
      cleanup(state, { ...ctx, outcome, error: failure?.error }),
    );
    record.cleanup = result.ok
      ? { status: 'succeeded', durationMs: Date.now() - startedAt }
      : { status: result.status === 'timed-out' ? 'timed-out' : 'failed', durationMs: Date.now() - startedAt, error: result.error };
    emit({ type: 'cleanup-end', record });
  }

  const report: StepsReport = { outcome, steps: started.map((s) => s.record), durationMs: Date.now() - runStartedAt };
  if (failure) report.error = failure.error;
  try {
    opts.onFinish?.(report);
  } catch {
    // As for onEvent.
  }
  if (failure) throw failure.error;
  return report;
}

function stepTimeLimit(step: Step<unknown>, opts: RunStepsOptions): number {
  const limit = opts.timeoutOverrides?.[step.name] ?? step.timeoutMs ?? opts.defaultTimeoutMs;
  if (limit === undefined) throw new TypeError(`step "${step.name}" has no time limit: set its timeoutMs or RunStepsOptions.defaultTimeoutMs`);
  if (!(limit > 0)) throw new TypeError(`step "${step.name}": time limit must be a positive number of milliseconds (got ${limit})`);
  return limit;
}

function abortedBeforeStart(stepName: string, reason: unknown): Exclude<BoundedResult, { ok: true }> {
  if (reason instanceof TimeLimitReached) {
    return { ok: false, status: 'timed-out', error: new StageTimeoutError(stepName, reason.limitMs, null, reason.scope, 'it had not started yet') };
  }
  return { ok: false, status: 'aborted', error: new StageAbortedError(stepName, describeAbortReason(reason)) };
}

/**
 * Runs `body` with a context whose signal aborts at `limitMs` or when
 * `parentSignal` aborts, and classifies how it ended. Once aborted, waits at
 * most `settleMs` for body to return.
 */
async function runBounded(
  name: string,
  limitMs: number,
  scope: TimeLimitScope,
  parentSignal: AbortSignal,
  settleMs: number,
  body: (ctx: StepContext) => Promise<void>,
): Promise<BoundedResult> {
  const controller = new AbortController();
  const forward = (): void => controller.abort(parentSignal.reason);
  if (parentSignal.aborted) forward();
  else parentSignal.addEventListener('abort', forward, { once: true });
  const cancelLimit = setLongTimeout(() => controller.abort(new TimeLimitReached(scope, name, limitMs)), limitMs);
  const deadline = Date.now() + limitMs;
  const ctx: StepContext = {
    stepName: name,
    signal: controller.signal,
    timeLimitMs: limitMs,
    deadline,
    remainingMs: () => Math.max(0, deadline - Date.now()),
  };

  let settleTimer: NodeJS.Timeout | undefined;
  const abandoned = new Promise<'abandoned'>((resolve) => {
    const startSettling = (): void => {
      settleTimer = setTimeout(() => resolve('abandoned'), settleMs);
    };
    if (controller.signal.aborted) startSettling();
    else controller.signal.addEventListener('abort', startSettling, { once: true });
  });
  let finished: { ok: true } | { ok: false; error: unknown } | 'abandoned';
  try {
    finished = await Promise.race([
      Promise.resolve()
        .then(() => body(ctx))
        .then(
          () => ({ ok: true }) as const,
          (error: unknown) => ({ ok: false, error }) as const,
        ),
      abandoned,
    ]);
  } finally {
    cancelLimit();
    clearTimeout(settleTimer);
    parentSignal.removeEventListener('abort', forward);
  }

  if (finished !== 'abandoned' && finished.ok) return { ok: true };
  const runError = finished === 'abandoned' ? undefined : finished.error;
  const abandonNote = finished === 'abandoned' ? `it did not stop within ${formatDuration(settleMs)} and was abandoned` : undefined;
  const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
  if (reason instanceof TimeLimitReached) {
    // Keep the supervisor's error: it names the diagnostics file.
    if (runError instanceof StageTimeoutError) return { ok: false, status: 'timed-out', error: runError };
    const error = new StageTimeoutError(name, reason.limitMs, null, reason.scope, abandonNote);
    if (runError !== undefined) (error as { cause?: unknown }).cause = runError;
    return { ok: false, status: 'timed-out', error };
  }
  if (controller.signal.aborted) {
    if (runError instanceof StageError) return { ok: false, status: 'aborted', error: runError };
    const error = new StageAbortedError(name, describeAbortReason(reason) + (abandonNote ? `; ${abandonNote}` : ''));
    if (runError !== undefined) (error as { cause?: unknown }).cause = runError;
    return { ok: false, status: 'aborted', error };
  }
  return { ok: false, status: 'failed', error: runError };
}
