// Debian's vagrant as the tests run it: its own VAGRANT_HOME, offline, no version check, started
// without blocking this process (a catalog server in the test answers it meanwhile).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { findExecutable } from '../../src/exec/tools.ts';
import { NAME } from './helpers.ts';

export const VAGRANT = findExecutable('vagrant');

export interface Run {
  code: number | null;
  output: string;
}

export function runAsync(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export function vagrant(args: string[], options: { home: string; cwd?: string; serverUrl?: string }): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, VAGRANT_HOME: options.home, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1' };
  delete env.VAGRANT_SERVER_URL;
  if (options.serverUrl) env.VAGRANT_SERVER_URL = options.serverUrl;
  return runAsync(VAGRANT!, args, { cwd: options.cwd ?? options.home, env });
}

export function assertAdded(run: Run, version: string, name = NAME): void {
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`Successfully added box '${name.replace(/\./g, '\\.')}' \\(v${version.replace(/\./g, '\\.')}\\) for 'libvirt'`));
}
