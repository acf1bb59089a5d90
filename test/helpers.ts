// Shared by the tests: temporary folders, running real programs, rendering boxes.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { REPO_ROOT } from '../src/render/render.ts';

export { REPO_ROOT };
export const CLI = path.join(REPO_ROOT, 'src/cli.ts');

/** A temporary folder removed when the test file ends. */
export function tempDir(prefix = 'boxsmith-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs a program to its end (two minutes at most unless `timeout` says otherwise). */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) throw result.error;
  return result;
}

/** Runs boxsmith's CLI as users do (through tsx), with extra environment. */
export function boxsmith(args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return run(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
}

export interface AsyncRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr as they came. */
  output: string;
}

/**
 * Runs a program to its end (two minutes at most) without blocking this process, so that a server
 * the test runs in it (a catalog host, a box host) answers the program meanwhile.
 */
export function runAsync(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<AsyncRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const run: AsyncRun = { status: null, stdout: '', stderr: '', output: '' };
    child.stdout.on('data', (chunk: Buffer) => {
      run.stdout += chunk.toString();
      run.output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      run.stderr += chunk.toString();
      run.output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ ...run, status });
    });
  });
}

/** boxsmith's CLI as users run it, without blocking this process (see runAsync). */
export function boxsmithAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<AsyncRun> {
  return runAsync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
}

/** Every file below a folder, as relative path -> content and mode. */
export function snapshotTree(dir: string): Map<string, { content: string; mode: number }> {
  const files = new Map<string, { content: string; mode: number }>();
  const walk = (current: string) => {
    for (const name of readdirSync(current).sort()) {
      const full = path.join(current, name);
      if (statSync(full).isDirectory()) walk(full);
      else files.set(path.relative(dir, full), { content: readFileSync(full, 'latin1'), mode: statSync(full).mode & 0o777 });
    }
  };
  walk(dir);
  return files;
}

/** The body of `source "TYPE" "box" { ... }` in a rendered template. */
export function sourceBlock(hcl: string, type: string): string {
  const start = hcl.indexOf(`source "${type}" "box" {`);
  if (start < 0) throw new Error(`no source "${type}" in the template`);
  return hcl.slice(start, hcl.indexOf('\n}\n', start) + 2);
}

/** The value of `key = value` (first match) in a block of HCL. */
export function hclAttribute(block: string, key: string): string | undefined {
  return new RegExp(`^\\s*${key}\\s*=\\s*(.+)$`, 'm').exec(block)?.[1]?.trim();
}
