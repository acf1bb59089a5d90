// A stream through a filter program (a compressor or decompressor: pigz, zstd, xz): `input` piped
// into its stdin, its stdout into `output`, its stderr kept for the error. It runs in its own
// process group; an abort stops that group as every supervised task is stopped (SIGTERM+SIGCONT,
// a short grace, SIGKILL until none is left: kill-escalation.ts) before the promise settles, so
// nothing of it is left running when the caller removes what it was writing.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { childEnvironment } from './child-env.ts';
import { stopProcesses } from './kill-escalation.ts';
import { selfAndAncestors, signalProcessGroup, snapshotProcesses } from './proc.ts';

/** A filter has nothing to save: a short grace before SIGKILL. */
const FILTER_GRACE_MS = 2000;

export interface FilterProgram {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** The program could not start, or ended other than with exit 0. */
export class FilterProgramError extends Error {
  constructor(
    readonly command: string,
    readonly ending: { startError: Error } | { exitCode: number | null; signal: NodeJS.Signals | null; stderr: string },
  ) {
    super(
      'startError' in ending
        ? `${path.basename(command)} could not start: ${ending.startError.message}`
        : `${path.basename(command)} failed (${ending.signal ?? `exit ${ending.exitCode}`})${ending.stderr.trim() ? `: ${lastLine(ending.stderr)}` : ''}`,
    );
    this.name = 'FilterProgramError';
  }
}

function exitedBy(error: unknown, signal: NodeJS.Signals): boolean {
  return error instanceof FilterProgramError && 'signal' in error.ending && error.ending.signal === signal;
}

/** The last non-empty line of a program's stderr: what it said last is what went wrong. */
export function lastLine(stderr: string): string {
  return stderr.trim().split('\n').pop() ?? '';
}

/**
 * Pipes `input` through the program into `output`. Resolves when the program exited 0 and both
 * pipes are done. Its own failure (FilterProgramError) comes before a pipe's: a cut stream also
 * breaks what reads the output, and the program's complaint says more; but when `output` failed
 * and the program died of SIGPIPE for it, the output's error is the one. An abort rejects with
 * the signal's reason once the program's group is gone.
 */
export async function pipeThroughProgram(input: NodeJS.ReadableStream | AsyncIterable<Buffer>, output: Writable, program: FilterProgram): Promise<void> {
  const { command, signal } = program;
  signal?.throwIfAborted();
  const child = spawn(command, program.args, {
    env: childEnvironment(program.env ?? process.env),
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr.on('data', (part: Buffer) => (stderr += part.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', (startError) => reject(new FilterProgramError(command, { startError })));
    child.once('close', (exitCode, exitSignal) =>
      exitCode === 0 ? resolve() : reject(new FilterProgramError(command, { exitCode, signal: exitSignal, stderr })),
    );
  });

  const pgid = child.pid;
  let stopping: Promise<unknown> | undefined;
  const stop = () => {
    if (pgid === undefined) return;
    const protectedPids = selfAndAncestors();
    stopping ??= stopProcesses(
      {
        live: () => [...snapshotProcesses().values()].filter((p) => p.pgid === pgid && p.state !== 'Z' && !protectedPids.has(p.pid)),
        signal: (sig) => signalProcessGroup(pgid, sig),
        killCgroups: () => undefined,
      },
      FILTER_GRACE_MS,
    );
  };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const pipes = signal ? { signal } : {};
    const [fed, drained, ended] = await Promise.allSettled([pipeline(input, child.stdin, pipes), pipeline(child.stdout, output, pipes), exited]);
    if (signal?.aborted) {
      stop();
      await stopping;
      throw signal.reason;
    }
    // Killed by SIGPIPE: its output went away first (a full disk, say), and that is the cause.
    const outputWentAway = ended.status === 'rejected' && drained.status === 'rejected' && exitedBy(ended.reason, 'SIGPIPE');
    if (ended.status === 'rejected' && !outputWentAway) throw ended.reason;
    for (const outcome of [drained, fed]) if (outcome.status === 'rejected') throw outcome.reason;
  } catch (error) {
    // Whatever failed, the program is not left running (an output that failed leaves it blocked).
    if (child.exitCode === null && child.signalCode === null) stop();
    await stopping;
    throw error;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}
