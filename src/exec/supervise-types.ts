// What runSupervised takes and gives: its options, its result, and what a `watch` callback sees
// of the running stage. Kept apart from the code so that every file of the supervisor can name
// them without importing the entry point back.
import type { ProcInfo } from './proc.ts';
import type { OutputStream } from './stage-log.ts';
import type { Watchdog } from './watchdog.ts';

export interface SuperviseOptions {
  /** Stage name, used in messages and diagnostics file names ("build", "smoke"). */
  stage: string;
  command: string;
  args: string[];
  cwd?: string;
  /** Variables layered over process.env; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  /** Per-stage log; appended to, created with its directory when missing. */
  logFile: string;
  /** Time limit of this child. At the limit: diagnostics, SIGTERM, grace, SIGKILL, StageTimeoutError. */
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL. Default 10 s. */
  graceMs?: number;
  /** Where `<stage>-timeout-<timestamp>.txt` is written. */
  diagnosticsDir: string;
  /** Every line of output, as it arrives (for the progress display). */
  onLine?: (line: string, stream: OutputStream) => void;
  /** Abort = stop the stage (SIGTERM, grace, SIGKILL) and reject with StageAbortedError. A TimeLimitReached reason takes the timeout path instead. */
  signal?: AbortSignal;
  /**
   * Called every `watchIntervalMs` while the child runs. Returning a reason
   * (e.g. "qemu (pid 123) exited") ends the stage at once with DependencyDiedError.
   */
  watch?: (task: SupervisedTaskView) => string | null;
  watchIntervalMs?: number;
  /** Resolve (instead of rejecting with StageFailedError) when the program exits non-zero. */
  allowFailure?: boolean;
  /** VM serial console logs whose tail goes into the timeout diagnostics. */
  consoleLogs?: string[];
  /** The run's watchdog: the child's process group (and cgroup) are registered with it while it runs. */
  watchdog?: Watchdog;
  /** Defaults to the watchdog's run id, else this process's run id (see defaultRunId). */
  runId?: string;
  /**
   * What to do with processes still running when the program itself has
   * exited: 'kill' (default; e.g. a QEMU a crashed Packer left behind) or
   * 'keep' (daemons a later stage needs, such as a VM started by `vagrant up`;
   * they stay tagged and registered, so the watchdog or terminateRunProcesses
   * still ends them).
   */
  leftovers?: 'kill' | 'keep';
  /** Use a cgroup v2 per child where the host allows it (default true). The env tag scan works either way. */
  cgroup?: boolean;
  /** Time limit of each gdb during diagnostics. Default 20 s. */
  gdbTimeoutMs?: number;
}

export interface RunResult {
  stage: string;
  command: string;
  args: string[];
  pid: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
  logFile: string;
  /** Processes the program left running when it exited, which were then stopped. */
  leftoversKilled: Array<{ pid: number; command: string }>;
  /** Processes left running on purpose (leftovers: 'keep'). */
  leftoversKept: Array<{ pid: number; command: string }>;
}

/** A process of a stage, with its argv (for matching, e.g. "is this the qemu?"). */
export interface StageProcess extends ProcInfo {
  argv: string[];
}

/** What `watch` callbacks see of the running stage. */
export interface SupervisedTaskView {
  readonly stage: string;
  readonly runId: string;
  readonly taskId: string;
  /** The supervised child; also its process group and session id. */
  readonly pid: number;
  readonly pgid: number;
  /** Live processes of the stage: the group, tagged stragglers, cgroup members and their descendants. */
  processes(): StageProcess[];
}
