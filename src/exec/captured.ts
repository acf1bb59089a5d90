// Runs a short helper command (gdb, VBoxManage, virsh, vmrun) with a time
// limit of its own and captures its output. Helpers are run while something
// else is already wrong, so they must not become the next thing that hangs:
// each runs in its own process group and the group is killed at the limit.

import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { signalProcessGroup } from './proc.ts';
import { childEnvironment } from './child-env.ts';

export interface CapturedRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the helper was killed at its time limit. */
  timedOut: boolean;
  /** Set when the helper could not be started at all. */
  startError?: Error;
}

export interface CapturedRunOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output beyond this many bytes per stream is dropped (a runaway gdb must not eat memory). */
  maxOutputBytes?: number;
  /** Nice value to run at (-20..19). Best effort: raising priority needs root or CAP_SYS_NICE. */
  niceness?: number;
}

const KILL_AFTER_TERM_MS = 2000;
const CLOSE_WAIT_MS = 1000;

export function runCaptured(command: string, args: readonly string[], options: CapturedRunOptions): Promise<CapturedRun> {
  const maxBytes = options.maxOutputBytes ?? 1024 * 1024;
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: childEnvironment(options.env ?? process.env),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (options.niceness !== undefined && child.pid !== undefined) {
      try {
        setPriority(child.pid, options.niceness);
      } catch {
        // Not permitted: run at normal priority.
      }
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      if (outBytes < maxBytes) out.push(chunk);
      outBytes += chunk.length;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (errBytes < maxBytes) err.push(chunk);
      errBytes += chunk.length;
    });

    let timedOut = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const limitTimer = setTimeout(() => {
      timedOut = true;
      if (child.pid) signalProcessGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => {
        if (child.pid) signalProcessGroup(child.pid, 'SIGKILL');
      }, KILL_AFTER_TERM_MS);
    }, options.timeoutMs);

    const finish = (result: Omit<CapturedRun, 'stdout' | 'stderr' | 'timedOut'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(limitTimer);
      clearTimeout(killTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      const clip = (chunks: Buffer[], total: number): string =>
        Buffer.concat(chunks).toString('utf8', 0, Math.min(total, maxBytes)) + (total > maxBytes ? `\n[... ${total - maxBytes} more bytes dropped]\n` : '');
      resolve({ ...result, stdout: clip(out, outBytes), stderr: clip(err, errBytes), timedOut });
    };

    child.once('error', (error) => finish({ exitCode: null, signal: null, startError: error }));
    child.once('exit', (exitCode, signal) => {
      // A helper's own children (a daemon VBoxManage started, say) may hold the pipes open; don't wait on them forever.
      const fallback = setTimeout(() => finish({ exitCode, signal }), CLOSE_WAIT_MS);
      child.once('close', () => {
        clearTimeout(fallback);
        finish({ exitCode, signal });
      });
    });
  });
}
