// What boxsmith records about a stage that hit its time limit, before it
// kills anything: once the processes are dead, the evidence of where they
// were stuck is gone. Modelled on Phusion's "right way to deal with frozen
// processes": process tree with state and wait channel, kernel stacks, gdb
// backtraces of every thread (like `crash-watch --dump`), Go's own goroutine
// dump via SIGQUIT, and the VM's serial console.

import { appendFileSync, mkdirSync, openSync, closeSync, readSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { runCaptured } from './captured.ts';
import { isGoBinary, isPackerName } from './elf.ts';
import {
  CLOCK_TICKS_PER_SECOND,
  describeCommand,
  isAlive,
  listThreads,
  readExePath,
  readKernelStack,
  readProcStat,
  readWchan,
  sendSignal,
  sleep,
  type ProcInfo,
} from './proc.ts';
import { findExecutable } from './tools.ts';
import { formatDuration } from './timeouts.ts';

export interface TimeoutDiagnosticsRequest {
  stage: string;
  command: string;
  args: readonly string[];
  runId: string;
  taskId: string;
  startedAt: Date;
  /** Which limit struck, for the header. */
  limitDescription: string;
  /** The supervised child (group leader). */
  rootPid: number;
  rootPgid: number;
  /** The processes of the stage at the moment the limit struck. */
  processes: ProcInfo[];
  diagnosticsDir: string;
  logFile: string;
  consoleLogs: readonly string[];
  /** Time limit for each gdb; gdb itself can hang on a process in uninterruptible sleep. */
  gdbTimeoutMs: number;
  /** Environment for helper processes (carries the run tag so the watchdog can find them). */
  helperEnv: NodeJS.ProcessEnv;
  /** Records progress in the stage log. */
  note: (text: string) => void;
}

export interface TimeoutDiagnosticsResult {
  file: string;
  /** Pids that got SIGQUIT because they are Go programs. */
  goPids: number[];
}

const GDB_CONCURRENCY = 8;
const GDB_NICENESS = -10;
const GO_DUMP_WAIT_MS = 2000;
const CONSOLE_TAIL_BYTES = 16 * 1024;
const CONSOLE_TAIL_LINES = 100;
const LOG_TAIL_LINES = 40;
const MAX_THREADS_LISTED = 64;

/** File name for a stage's timeout diagnostics; the timestamp keeps repeated timeouts apart. */
export function diagnosticsFileName(stage: string, at: Date = new Date()): string {
  const stamp = at.toISOString().replace(/[:.]/g, '-');
  return `${stage.replace(/[^A-Za-z0-9_.-]/g, '_')}-timeout-${stamp}.txt`;
}

export async function writeTimeoutDiagnostics(request: TimeoutDiagnosticsRequest): Promise<TimeoutDiagnosticsResult> {
  mkdirSync(request.diagnosticsDir, { recursive: true });
  const file = join(request.diagnosticsDir, diagnosticsFileName(request.stage));
  const write = (text: string): void => appendFileSync(file, text.endsWith('\n') ? text : `${text}\n`);
  const now = new Date();
  const processes = request.processes.filter((p) => readProcStat(p.pid) !== null);

  // Written section by section, so whatever was gathered survives if boxsmith dies half-way.
  write(
    [
      `boxsmith timeout diagnostics`,
      `stage:        ${request.stage}`,
      `limit:        ${request.limitDescription}`,
      `command:      ${[request.command, ...request.args].join(' ')}`,
      `started at:   ${request.startedAt.toISOString()}`,
      `timed out at: ${now.toISOString()} (after ${formatDuration(now.getTime() - request.startedAt.getTime())})`,
      `run id:       ${request.runId}   task id: ${request.taskId}`,
      `stage log:    ${request.logFile}`,
      '',
    ].join('\n'),
  );
  write(formatProcessTable(processes, request.rootPid, request.rootPgid));
  request.note(`diagnostics: process tree of ${processes.length} process(es) written to ${file}`);

  for (const info of processes) write(formatProcessDetails(info, request.rootPgid));

  await appendGdbBacktraces(processes, request, write);
  const goPids = await quitGoPrograms(processes, request, write);
  appendConsoleTails(request.consoleLogs, write);
  write(`==== last ${LOG_TAIL_LINES} lines of the stage log (${request.logFile}) ====\n${tailLines(request.logFile, LOG_TAIL_LINES).join('\n')}\n`);
  request.note(`diagnostics complete: ${file}`);
  return { file, goPids };
}

function cpuSeconds(ticks: number): string {
  return `${(ticks / CLOCK_TICKS_PER_SECOND).toFixed(2)}s`;
}

/** ps-like table, children indented under their parents. */
export function formatProcessTable(processes: ProcInfo[], rootPid: number, rootPgid: number): string {
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const children = new Map<number, ProcInfo[]>();
  const roots: ProcInfo[] = [];
  for (const p of processes) {
    if (byPid.has(p.ppid) && p.ppid !== p.pid) {
      const list = children.get(p.ppid) ?? [];
      list.push(p);
      children.set(p.ppid, list);
    } else {
      roots.push(p);
    }
  }
  // The supervised child first; then processes that were orphaned or re-parented.
  roots.sort((a, b) => (a.pid === rootPid ? -1 : b.pid === rootPid ? 1 : a.pid - b.pid));
  const lines = [
    '==== process tree ====',
    'PID      PPID     PGID     SID      STATE  THREADS  UTIME     STIME     WCHAN                      COMMAND',
  ];
  const visit = (p: ProcInfo, depth: number): void => {
    const wchan = readWchan(p.pid) ?? '?';
    const notes: string[] = [];
    if (p.pgid !== rootPgid) notes.push(`left process group ${rootPgid}`);
    if (depth === 0 && p.pid !== rootPid) notes.push(`parent ${p.ppid} is outside the stage`);
    lines.push(
      [
        String(p.pid).padEnd(8),
        String(p.ppid).padEnd(8),
        String(p.pgid).padEnd(8),
        String(p.sid).padEnd(8),
        p.state.padEnd(6),
        String(p.numThreads).padEnd(8),
        cpuSeconds(p.utimeTicks).padEnd(9),
        cpuSeconds(p.stimeTicks).padEnd(9),
        wchan.padEnd(26),
        `${'  '.repeat(depth)}${describeCommand(p.pid, p.comm)}${notes.length > 0 ? `   [${notes.join('; ')}]` : ''}`,
      ].join(' '),
    );
    for (const child of (children.get(p.pid) ?? []).sort((a, b) => a.pid - b.pid)) visit(child, depth + 1);
  };
  for (const root of roots) visit(root, 0);
  return `${lines.join('\n')}\n`;
}

function formatProcessDetails(info: ProcInfo, rootPgid: number): string {
  const lines = [`==== process ${info.pid} (${info.comm}) ====`];
  lines.push(`command:  ${describeCommand(info.pid, info.comm)}`);
  lines.push(`exe:      ${readExePath(info.pid) ?? '(unreadable)'}`);
  lines.push(
    `state:    ${info.state}   ppid ${info.ppid}   pgid ${info.pgid}${info.pgid !== rootPgid ? ' (left the group)' : ''}   sid ${info.sid}`,
  );
  lines.push(`cpu:      user ${cpuSeconds(info.utimeTicks)}   system ${cpuSeconds(info.stimeTicks)}   threads ${info.numThreads}`);
  lines.push(`wchan:    ${readWchan(info.pid) ?? '(unreadable)'}`);
  const stack = readKernelStack(info.pid);
  lines.push(`kernel stack (/proc/${info.pid}/stack):`);
  lines.push('stack' in stack ? indent(stack.stack) : `  (unreadable: ${stack.error})`);
  const threads = listThreads(info.pid);
  if (threads.length > 1) {
    lines.push(`threads (tid state wchan):`);
    for (const tid of threads.slice(0, MAX_THREADS_LISTED)) {
      const threadStat = readProcStat(tid);
      lines.push(`  ${tid} ${threadStat?.state ?? '?'} ${readWchan(`${info.pid}/task/${tid}`) ?? '?'}`);
    }
    if (threads.length > MAX_THREADS_LISTED) lines.push(`  ... ${threads.length - MAX_THREADS_LISTED} more`);
  }
  return `${lines.join('\n')}\n`;
}

async function appendGdbBacktraces(processes: ProcInfo[], request: TimeoutDiagnosticsRequest, write: (text: string) => void): Promise<void> {
  const gdb = findExecutable('gdb', request.helperEnv);
  if (!gdb) {
    write('==== gdb backtraces ====\n(skipped: gdb is not installed; install gdb for C-level backtraces of frozen processes)\n');
    return;
  }
  const targets = processes.filter((p) => p.state !== 'Z' && isAlive(p.pid));
  request.note(`diagnostics: gdb backtraces of ${targets.length} process(es)`);
  const results = new Map<number, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const target = targets[next++] as ProcInfo;
      results.set(target.pid, await gdbBacktrace(gdb, target.pid, request));
    }
  };
  await Promise.all(Array.from({ length: Math.min(GDB_CONCURRENCY, targets.length) }, worker));
  for (const target of targets) {
    write(`==== gdb backtrace of process ${target.pid} (${target.comm}) ====\n${results.get(target.pid) ?? '(none)'}\n`);
  }
}

async function gdbBacktrace(gdb: string, pid: number, request: TimeoutDiagnosticsRequest): Promise<string> {
  const run = await runCaptured(
    gdb,
    ['-batch', '-nx', '-iex', 'set auto-load off', '-p', String(pid), '-ex', 'set pagination off', '-ex', 'thread apply all bt'],
    {
      timeoutMs: request.gdbTimeoutMs,
      // No debuginfod: it would try the network (and may prompt) while a stage is already stuck.
      env: { ...request.helperEnv, DEBUGINFOD_URLS: '' },
      maxOutputBytes: 256 * 1024,
      // The stage's SIGTERM waits for these; on a build host QEMU (TCG) keeps every core busy.
      niceness: GDB_NICENESS,
    },
  );
  if (run.startError) return `(gdb could not be started: ${run.startError.message})`;
  const output = `${run.stdout}${run.stderr ? `\n[gdb stderr]\n${run.stderr}` : ''}`.trim();
  if (run.timedOut) return `${output}\n(gdb did not finish within ${formatDuration(request.gdbTimeoutMs)} and was killed)`;
  return output === '' ? `(gdb printed nothing; exit code ${run.exitCode})` : output;
}

/**
 * Go programs (Packer and its plugins) print every goroutine's stack to
 * stderr on SIGQUIT and exit. Their stderr is already in the stage log, so
 * the dump lands there. Rule: an ELF binary with Go's sections, or a
 * process named packer / packer-plugin-* (in case /proc/PID/exe is unreadable).
 */
async function quitGoPrograms(processes: ProcInfo[], request: TimeoutDiagnosticsRequest, write: (text: string) => void): Promise<number[]> {
  const goProcesses = processes.filter((p) => {
    if (p.state === 'Z') return false;
    const exe = readExePath(p.pid);
    return isPackerName(p.comm) || (exe !== null && isGoBinary(`/proc/${p.pid}/exe`));
  });
  if (goProcesses.length === 0) {
    write('==== Go programs ====\n(none found: no goroutine dump requested)\n');
    return [];
  }
  for (const p of goProcesses) sendSignal(p.pid, 'SIGQUIT');
  request.note(`diagnostics: sent SIGQUIT to Go program(s) ${goProcesses.map((p) => `${p.pid} (${p.comm})`).join(', ')} for goroutine dumps`);
  // Give them a moment to write the dump before the group is terminated.
  const deadline = Date.now() + GO_DUMP_WAIT_MS;
  while (Date.now() < deadline && goProcesses.some((p) => isAlive(p.pid, p.startTime))) await sleep(50);
  write(
    `==== Go programs ====\nSIGQUIT sent to ${goProcesses.map((p) => `${p.pid} (${p.comm})`).join(', ')}; ` +
      `their goroutine dumps are in the stage log: ${request.logFile}\n`,
  );
  return goProcesses.map((p) => p.pid);
}

function appendConsoleTails(consoleLogs: readonly string[], write: (text: string) => void): void {
  if (consoleLogs.length === 0) {
    write('==== VM serial console ====\n(no console log registered for this stage)\n');
    return;
  }
  for (const path of consoleLogs) {
    const lines = tailLines(path, CONSOLE_TAIL_LINES);
    write(`==== VM serial console: last ${CONSOLE_TAIL_LINES} lines of ${path} ====\n${lines.join('\n')}\n`);
  }
}

/** Last `count` lines of a text file, reading at most its last 16 KiB (logs and consoles can be huge). */
export function tailLines(path: string, count: number, maxBytes: number = CONSOLE_TAIL_BYTES): string[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    return [`(cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)})`];
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n');
    if (length < size) lines.shift(); // first line is probably cut
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-count);
  } finally {
    closeSync(fd);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
