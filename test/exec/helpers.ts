// Shared helpers for the execution-layer tests: temporary folders, polling
// the real process table, and driver processes that stand in for boxsmith.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { findProcessesWithEnv, isAlive, readProcStat, sendSignal } from '../../src/exec/proc.ts';
import { runTag } from '../../src/exec/run-id.ts';

export const FIXTURES = fileURLToPath(new URL('../fixtures/exec/', import.meta.url));
export const fixture = (name: string): string => join(FIXTURES, name);

/** A temporary folder, removed by the returned cleanup. */
export function makeTempDir(prefix = 'boxsmith-exec-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `condition` holds; returns false if it still does not after `timeoutMs`. */
export async function pollUntil(condition: () => boolean, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** Live processes tagged with the run id. */
export function runProcesses(runId: string): number[] {
  return findProcessesWithEnv(runTag(runId)).map((p) => p.pid);
}

export function alivePids(pids: Iterable<number>): number[] {
  return [...pids].filter((pid) => isAlive(pid));
}

/**
 * Test safety net: remembers processes a test started (with their start
 * time, because pids are recycled and other people's processes run on this
 * machine too) and SIGKILLs whatever of them, and of the given runs, is
 * still alive when the suite ends, so a failed test leaves nothing behind.
 */
export class ProcessTracker {
  private readonly processes = new Map<number, number>();
  readonly runIds = new Set<string>();

  track(...pids: number[]): void {
    for (const pid of pids) {
      const info = readProcStat(pid);
      if (info && !this.processes.has(pid)) this.processes.set(pid, info.startTime);
    }
  }

  trackRun(runId: string): void {
    this.runIds.add(runId);
  }

  killAll(): void {
    for (const [pid, startTime] of this.processes) if (isAlive(pid, startTime)) sendSignal(pid, 'SIGKILL');
    for (const runId of this.runIds) for (const pid of runProcesses(runId)) sendSignal(pid, 'SIGKILL');
  }
}

/** Parses the "role pid" lines stubborn-tree.sh prints. */
export function recordRole(roles: Map<string, number>, line: string): void {
  const match = /^(child|grandchild|setsid-grandchild|orphan) (\d+)$/.exec(line);
  if (match) roles.set(match[1] as string, Number(match[2]));
}

export interface Driver {
  process: ChildProcess;
  pid: number;
  /** Resolves with the first stdout line that parses as JSON with "ready". */
  ready: Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name) once the driver exited. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

/** Starts a TypeScript driver from test/fixtures/exec with tsx, as boxsmith would be started. */
export function startDriver(script: string, args: string[]): Driver {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture(script), ...args], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const message = JSON.parse(line) as Record<string, unknown>;
        if (message.ready) resolve(message);
      } catch {
        // not a status line
      }
    });
    void exit.then(({ code, signal }) => reject(new Error(`driver ${script} exited before ready (${signal ?? code}): ${stderr}`)));
  });
  ready.catch(() => {});
  return { process: child, pid: child.pid as number, ready, exit, stderr: () => stderr };
}
