// One running supervised child, from its start to its end: what ends it first (its exit, a time
// limit, an abort, the caller's watch callback), stopping everything of it (kill-escalation.ts
// over its processes, task-processes.ts), and waiting for the kernel to report its exit and for
// its output pipes to close, each for a bounded time.
import type { ChildProcess } from 'node:child_process';
import type { TaskCgroup } from './cgroup.ts';
import { TimeLimitReached, describeAbortReason, type TimeLimitScope } from './errors.ts';
import { stopProcesses, type ProcessSet } from './kill-escalation.ts';
import { describeProcesses, readCmdline, waitAtMost, type ProcInfo } from './proc.ts';
import { TASK_ID_ENV } from './run-id.ts';
import type { StageLog } from './stage-log.ts';
import type { StageProcess, SuperviseOptions, SupervisedTaskView } from './supervise-types.ts';
import { liveTaskMembers, signalTaskMembers, taskMembers, type TaskScope } from './task-processes.ts';
import { formatDuration, setLongTimeout } from './timeouts.ts';

const DEFAULT_WATCH_INTERVAL_MS = 1000;
/** After SIGKILL, how long to wait for the kernel to report the child's exit. */
const REAP_WAIT_MS = 5000;
/** How long to wait for the output pipes to drain after the child and its group are gone. */
const CLOSE_WAIT_MS = 2000;

export type Ending =
  | { kind: 'exited' }
  | { kind: 'time-limit'; scope: TimeLimitScope; limitMs: number }
  | { kind: 'aborted'; reason: string }
  | { kind: 'dependency-died'; reason: string }
  | { kind: 'watch-failed'; error: unknown };

/** What an abort of the stage's signal means: its time limit (TimeLimitReached) or a stop. */
export function abortEnding(reason: unknown): Ending {
  if (reason instanceof TimeLimitReached) return { kind: 'time-limit', scope: reason.scope, limitMs: reason.limitMs };
  return { kind: 'aborted', reason: describeAbortReason(reason) };
}

export class SupervisedTask implements SupervisedTaskView, TaskScope {
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
  private readonly processSet: ProcessSet = {
    live: () => this.aliveMembers(),
    signal: (signal, members) => signalTaskMembers(this, signal, members),
    killCgroups: () => this.cgroup?.kill(),
  };

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

  /** Every process of this stage, zombies included. */
  members(table?: Map<number, ProcInfo>): Map<number, ProcInfo> {
    return taskMembers(this, table);
  }

  aliveMembers(): ProcInfo[] {
    return liveTaskMembers(this);
  }

  processes(): StageProcess[] {
    return this.aliveMembers().map((p) => ({ ...p, argv: readCmdline(p.pid) ?? [] }));
  }

  /** SIGTERM (+SIGCONT for stopped ones), grace, SIGKILL, reap. Never waits longer than grace plus a few bounded seconds. */
  async terminate(graceMs: number, reason: string): Promise<void> {
    const { survivors } = await stopProcesses(this.processSet, graceMs, {
      terminating: (live) => {
        const outside = live.filter((p) => p.pgid !== this.pgid);
        this.log.note(
          `${reason}: sending SIGTERM to process group ${this.pgid}` +
            (outside.length > 0 ? ` and to ${outside.length} process(es) that left it (${outside.map((p) => p.pid).join(', ')})` : '') +
            `: ${describeProcesses(live)}`,
        );
      },
      killing: (live) => this.log.note(`still running after the ${formatDuration(graceMs)} grace period, sending SIGKILL: ${describeProcesses(live)}`),
    });
    if (survivors.length > 0) this.log.note(`could not kill (stuck in uninterruptible sleep?): ${describeProcesses(survivors)}`);
    await waitAtMost(this.exited, REAP_WAIT_MS);
    if (!this.exitStatus) this.log.note(`process ${this.pid} did not report its exit within ${formatDuration(REAP_WAIT_MS)} after SIGKILL`);
    await this.waitForOutputClosed();
    if (survivors.length === 0 && this.exitStatus) this.log.note('all processes of the stage have ended');
  }

  /** Synchronous last resort (second Ctrl-C): SIGKILL everything of the stage now. */
  forceKill(): void {
    const alive = this.aliveMembers();
    this.cgroup?.kill();
    signalTaskMembers(this, 'SIGKILL', alive);
    this.log.note(`force-killed: ${alive.map((p) => p.pid).join(', ') || 'nothing was running'}`);
  }

  /** Waits for the output pipes to reach EOF; gives up (and drops the pipes) after `ms`. */
  async waitForOutputClosed(ms = CLOSE_WAIT_MS): Promise<void> {
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
