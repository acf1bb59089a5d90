// The execution layer: every external program boxsmith runs goes through here.
export { toolPath, toolEnvVar, findExecutable } from './tools.ts';
export {
  parseDuration,
  formatDuration,
  parseTimeoutOverrides,
  setLongTimeout,
  DurationParseError,
  TimeoutOverrideError,
  RUN_TIMEOUT_KEY,
} from './timeouts.ts';
export {
  StageError,
  StageTimeoutError,
  StageFailedError,
  StageAbortedError,
  DependencyDiedError,
  TimeLimitReached,
  InterruptedError,
  type TimeLimitScope,
} from './errors.ts';
export { RUN_ID_ENV, TASK_ID_ENV, newRunId, defaultRunId, runTag } from './run-id.ts';
export {
  runSupervised,
  forceKillAllSupervised,
  terminateRunProcesses,
  DEFAULT_GRACE_MS,
  type SuperviseOptions,
  type RunResult,
  type SupervisedTaskView,
  type StageProcess,
} from './supervise.ts';
export type { OutputStream } from './stage-log.ts';
export { VmProcessWatch, isQemuProcess, isVirtualBoxVmProcess, type VmProcessWatchOptions } from './vm-watch.ts';
export {
  runSteps,
  type Step,
  type StepContext,
  type CleanupContext,
  type StepRecord,
  type StepStatus,
  type StepsReport,
  type StepEvent,
  type RunStepsOptions,
} from './steps.ts';
export { installInterruptHandlers, exitCodeForSignal, type InterruptHandle, type InterruptHandlerOptions } from './signals.ts';
export { Watchdog, type WatchdogTarget, type WatchdogStartOptions } from './watchdog.ts';
