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

import { spawn, type ChildProcess } from 'node:child_process';
import { TaskCgroup, runCgroups, taskCgroupName } from './cgroup.ts';
import { writeTimeoutDiagnostics } from './diagnostics.ts';
import {
  DependencyDiedError,
  StageAbortedError,
  StageError,
  StageFailedError,
  StageTimeoutError,
  TimeLimitReached,
  describeAbortReason,
  type TimeLimitScope,
} from './errors.ts';
import {
  addDescendants,
  describeCommand,
  describeProcesses,
  findProcessesWithEnv,
  hasEnvEntry,
  readCmdline,
  readProcStat,
  selfAndAncestors,
  sendSignal,
  signalProcessGroup,
  sleep,
  snapshotProcesses,
  waitAtMost,
  type ProcInfo,
} from './proc.ts';
import { RUN_ID_ENV, TASK_ID_ENV, defaultRunId, runTag } from './run-id.ts';
import { StageLog, type OutputStream } from './stage-log.ts';
import { formatDuration, setLongTimeout } from './timeouts.ts';
import { findExecutable } from './tools.ts';
import type { Watchdog } from './watchdog.ts';
import { childEnvironment } from './child-env.ts';

export const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_WATCH_INTERVAL_MS = 1000;
const DEFAULT_GDB_TIMEOUT_MS = 20_000;
/** After SIGKILL, how long to wait for the kernel to report the child's exit. */
const REAP_WAIT_MS = 5000;
/** How long to wait for the output pipes to drain after the child and its group are gone. */
const CLOSE_WAIT_MS = 2000;
const POLL_MS = 100;

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

function buildChildEnv(extra: SuperviseOptions['env'], runId: string, taskId: string): NodeJS.ProcessEnv {
  const env = childEnvironment(process.env);
  delete env[RUN_ID_ENV];
  delete env[TASK_ID_ENV];
  for (const [name, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  env[RUN_ID_ENV] = runId;
  env[TASK_ID_ENV] = taskId;
  return env;
}

// ---------------------------------------------------------------- supervised child

type Ending =
  | { kind: 'exited' }
  | { kind: 'time-limit'; scope: TimeLimitScope; limitMs: number }
  | { kind: 'aborted'; reason: string }
  | { kind: 'dependency-died'; reason: string }
  | { kind: 'watch-failed'; error: unknown };

const liveTasks = new Set<SupervisedTask>();
/** Run ids this process has used, for forceKillAllSupervised. */
const runIdsInUse = new Set<string>();

class SupervisedTask implements SupervisedTaskView {
  readonly stage: string;
  readonly runId: string;
  readonly taskId: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly cgroup: TaskCgroup | null;
  readonly log: StageLog;
  readonly taskTag: string;
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exited: Promise<void>;
  private readonly closed: Promise<void>;
  private isClosed = false;

  constructor(fields: { stage: string; runId: string; taskId: string; child: ChildProcess; pid: number; cgroup: TaskCgroup | null; log: StageLog }) {
    this.stage = fields.stage;
    this.runId = fields.runId;
    this.taskId = fields.taskId;
    this.child = fields.child;
    this.pid = fields.pid;
    this.cgroup = fields.cgroup;
    this.log = fields.log;
    this.taskTag = `${TASK_ID_ENV}=${fields.taskId}`;
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve();
      });
    });
    this.closed = new Promise((resolve) => {
      this.child.once('close', () => {
        this.isClosed = true;
        resolve();
      });
    });
  }

  /** detached: true makes the child call setsid(), so it leads its own group and session. */
  get pgid(): number {
    return this.pid;
  }

  /** Every process of this stage, zombies included: group members, cgroup members, tagged processes, and their descendants. */
  members(table: Map<number, ProcInfo> = snapshotProcesses()): Map<number, ProcInfo> {
    const protectedPids = selfAndAncestors();
    const cgroupPids = new Set(this.cgroup?.pids() ?? []);
    const members = new Map<number, ProcInfo>();
    for (const info of table.values()) {
      if (protectedPids.has(info.pid)) continue;
      if (info.pgid === this.pgid || cgroupPids.has(info.pid) || hasEnvEntry(info.pid, this.taskTag)) members.set(info.pid, info);
    }
    addDescendants(members, table);
    for (const pid of protectedPids) members.delete(pid);
    return members;
  }

  aliveMembers(): ProcInfo[] {
    return [...this.members().values()].filter((p) => p.state !== 'Z' && p.state !== 'X');
  }

  processes(): StageProcess[] {
    return this.aliveMembers().map((p) => ({ ...p, argv: readCmdline(p.pid) ?? [] }));
  }

  /**
   * Signals the process group, and individually every member outside it.
   * The group is signalled only while one of its members was just seen
   * alive: the number of an emptied group can be recycled for someone else's.
   */
  signalMembers(signal: NodeJS.Signals, members: ProcInfo[]): void {
    if (members.some((member) => member.pgid === this.pgid)) signalProcessGroup(this.pgid, signal);
    for (const member of members) if (member.pgid !== this.pgid) sendSignal(member.pid, signal);
  }

  /** SIGTERM (+SIGCONT for stopped ones), grace, SIGKILL, reap. Never waits longer than grace plus a few bounded seconds. */
  async terminate(graceMs: number, reason: string): Promise<void> {
    let alive = this.aliveMembers();
    if (alive.length > 0) {
      const outside = alive.filter((p) => p.pgid !== this.pgid);
      this.log.note(
        `${reason}: sending SIGTERM to process group ${this.pgid}` +
          (outside.length > 0 ? ` and to ${outside.length} process(es) that left it (${outside.map((p) => p.pid).join(', ')})` : '') +
          `: ${describeProcesses(alive)}`,
      );
      const signalled = new Set(alive.map((p) => p.pid));
      this.signalMembers('SIGTERM', alive);
      this.signalMembers('SIGCONT', alive); // a stopped process acts on SIGTERM only once continued
      const deadline = Date.now() + graceMs;
      while (alive.length > 0 && Date.now() < deadline) {
        await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
        alive = this.aliveMembers();
        const newcomers = alive.filter((p) => !signalled.has(p.pid)); // forked while shutting down
        if (newcomers.length > 0) {
          for (const p of newcomers) signalled.add(p.pid);
          this.signalMembers('SIGTERM', newcomers);
          this.signalMembers('SIGCONT', newcomers);
        }
      }
      if (alive.length > 0) {
        this.log.note(`still running after the ${formatDuration(graceMs)} grace period, sending SIGKILL: ${describeProcesses(alive)}`);
        alive = await this.killUntilGone();
        if (alive.length > 0) this.log.note(`could not kill (stuck in uninterruptible sleep?): ${describeProcesses(alive)}`);
      }
    }
    await waitAtMost(this.exited, REAP_WAIT_MS);
    if (!this.exitStatus) this.log.note(`process ${this.pid} did not report its exit within ${formatDuration(REAP_WAIT_MS)} after SIGKILL`);
    await this.waitForOutputClosed(CLOSE_WAIT_MS);
    if (alive.length === 0 && this.exitStatus) this.log.note('all processes of the stage have ended');
  }

  /** SIGKILLs repeatedly until nothing of the stage is alive (a forking process can add members between scans). */
  async killUntilGone(): Promise<ProcInfo[]> {
    let alive = this.aliveMembers();
    for (let attempt = 0; attempt < 40 && alive.length > 0; attempt++) {
      this.cgroup?.kill();
      this.signalMembers('SIGKILL', alive);
      await sleep(50);
      alive = this.aliveMembers();
    }
    return alive;
  }

  /** Synchronous last resort (second Ctrl-C): SIGKILL everything of the stage now. */
  forceKill(): void {
    const alive = this.aliveMembers();
    this.cgroup?.kill();
    this.signalMembers('SIGKILL', alive);
    this.log.note(`force-killed: ${alive.map((p) => p.pid).join(', ') || 'nothing was running'}`);
  }

  /** Waits for the output pipes to reach EOF; gives up (and drops the pipes) after `ms`. */
  async waitForOutputClosed(ms: number): Promise<void> {
    if (!this.isClosed) await waitAtMost(this.closed, ms);
    if (!this.isClosed) {
      this.log.note(`output pipes still open ${formatDuration(ms)} after the program ended (held by a kept process); no longer reading them`);
      this.child.stdout?.destroy();
      this.child.stderr?.destroy();
    }
  }

  /** Resolves with whatever ends the stage first: exit, a time limit, an abort, or the watch callback. */
  waitForEnding(opts: SuperviseOptions): Promise<Ending> {
    return new Promise((resolve) => {
      const disposers: Array<() => void> = [];
      let settled = false;
      const end = (ending: Ending): void => {
        if (settled) return;
        settled = true;
        for (const dispose of disposers) dispose();
        resolve(ending);
      };
      void this.exited.then(() => end({ kind: 'exited' }));
      disposers.push(setLongTimeout(() => end({ kind: 'time-limit', scope: 'stage', limitMs: opts.timeoutMs }), opts.timeoutMs));
      if (opts.signal) {
        const signal = opts.signal;
        const onAbort = (): void => end(abortEnding(signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
        disposers.push(() => signal.removeEventListener('abort', onAbort));
      }
      if (opts.watch) {
        const watch = opts.watch;
        const interval = setInterval(() => {
          if (this.exitStatus) return; // the exit handler decides
          try {
            const reason = watch(this);
            if (reason !== null) end({ kind: 'dependency-died', reason });
          } catch (error) {
            end({ kind: 'watch-failed', error });
          }
        }, opts.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS);
        disposers.push(() => clearInterval(interval));
      }
    });
  }
}

function abortEnding(reason: unknown): Ending {
  if (reason instanceof TimeLimitReached) return { kind: 'time-limit', scope: reason.scope, limitMs: reason.limitMs };
  return { kind: 'aborted', reason: describeAbortReason(reason) };
}

// ---------------------------------------------------------------- runSupervised

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
  runIdsInUse.add(runId);
  const taskNumber = ++taskCounter;
  const taskId = `${runId}.${taskNumber}`;
  const commandLine = [opts.command, ...opts.args].join(' ');

  if (opts.signal?.aborted) {
    const ending = abortEnding(opts.signal.reason);
    if (ending.kind === 'time-limit') throw new StageTimeoutError(opts.stage, ending.limitMs, null, ending.scope, 'it had not started yet');
    throw new StageAbortedError(opts.stage, ending.kind === 'aborted' ? ending.reason : 'aborted');
  }

  const env = buildChildEnv(opts.env, runId, taskId);
  const cwd = opts.cwd ?? process.cwd();
  const log = new StageLog(opts.logFile, opts.onLine);
  try {
    log.note(`stage "${opts.stage}": ${commandLine}`);
    log.note(`cwd ${cwd}; time limit ${formatDuration(opts.timeoutMs)}, grace ${formatDuration(graceMs)}; run ${runId}, task ${taskId}`);

    if (findExecutable(opts.command, env, cwd) === null) {
      const startError = new Error(opts.command.includes('/') ? `${opts.command} does not exist or is not executable` : `${opts.command} was not found on PATH`);
      log.note(startError.message);
      throw new StageFailedError(opts.stage, { command: opts.command, exitCode: null, signal: null, logFile: opts.logFile, logTail: [], startError });
    }

    let cgroup: TaskCgroup | null = null;
    if (opts.cgroup !== false) {
      const created = TaskCgroup.create(taskCgroupName(runId, taskNumber));
      if (created instanceof TaskCgroup) cgroup = created;
      else log.note(`no cgroup containment (${created.unavailable}); relying on the process group and the ${TASK_ID_ENV} tag`);
    }
    const spawnSpec = cgroup ? cgroup.wrapCommand(opts.command, opts.args) : { command: opts.command, args: opts.args };
    const startedAt = new Date();
    const child = spawn(spawnSpec.command, spawnSpec.args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid === undefined) {
      const startError = await new Promise<Error>((resolve) => child.once('error', resolve));
      cgroup?.remove();
      log.note(`could not start: ${startError.message}`);
      throw new StageFailedError(opts.stage, { command: opts.command, exitCode: null, signal: null, logFile: opts.logFile, logTail: [], startError });
    }
    child.on('error', (error) => log.note(`child process error: ${error.message}`));
    child.stdout?.on('data', (chunk: Buffer) => log.write('stdout', chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.write('stderr', chunk));
    child.stdout?.once('end', () => log.flush('stdout'));
    child.stderr?.once('end', () => log.flush('stderr'));

    const task = new SupervisedTask({ stage: opts.stage, runId, taskId, child, pid: child.pid, cgroup, log });
    liveTasks.add(task);
    log.note(`started pid ${task.pid} (process group ${task.pgid}${cgroup ? `, cgroup ${cgroup.path}` : ''})`);
    const leader = readProcStat(task.pid);
    opts.watchdog?.register(leader ? { type: 'pgid', pgid: task.pgid, leaderStartTime: leader.startTime } : { type: 'pgid', pgid: task.pgid });
    if (cgroup) opts.watchdog?.register({ type: 'cgroup', path: cgroup.path });

    let keptProcesses = false;
    try {
      const ending = await task.waitForEnding(opts);
      const outcome = await finishTask(task, ending, opts, { graceMs, startedAt, commandLine });
      keptProcesses = outcome.leftoversKept.length > 0;
      return outcome;
    } finally {
      liveTasks.delete(task);
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

let taskCounter = 0;

/** rmdir fails while the kernel is still releasing just-killed members; retry for a moment. */
async function removeCgroup(cgroup: TaskCgroup): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    if (cgroup.remove()) return true;
    await sleep(50);
  }
  return false;
}

async function finishTask(
  task: SupervisedTask,
  ending: Ending,
  opts: SuperviseOptions,
  context: { graceMs: number; startedAt: Date; commandLine: string },
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
        await task.waitForOutputClosed(CLOSE_WAIT_MS);
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
          helperEnv: buildChildEnv({}, task.runId, `${task.runId}.diagnostics`),
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

// ---------------------------------------------------------------- whole-run helpers

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
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const tag = runTag(runId);
  const cgroups = runCgroups(runId);
  const collect = (): ProcInfo[] => {
    const table = snapshotProcesses();
    const found = new Map(findProcessesWithEnv(tag, table).map((p) => [p.pid, p]));
    for (const cgroup of cgroups) {
      for (const pid of cgroup.pids()) {
        const info = table.get(pid);
        if (info && info.state !== 'Z') found.set(pid, info);
      }
    }
    return [...found.values()];
  };
  let alive = collect();
  const described = alive.map((p) => ({ pid: p.pid, command: describeCommand(p.pid, p.comm) }));
  for (const p of alive) {
    sendSignal(p.pid, 'SIGTERM');
    sendSignal(p.pid, 'SIGCONT');
  }
  const deadline = Date.now() + graceMs;
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(POLL_MS);
    alive = collect();
  }
  for (let attempt = 0; attempt < 40 && alive.length > 0; attempt++) {
    for (const cgroup of cgroups) cgroup.kill();
    for (const p of alive) sendSignal(p.pid, 'SIGKILL');
    await sleep(50);
    alive = collect();
  }
  for (const cgroup of cgroups) cgroup.remove();
  return described;
}
