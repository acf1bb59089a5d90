// Debian's vagrant client, run by the publish tests against catalogs served on 127.0.0.1: each run
// with its own throw-away VAGRANT_HOME, offline, and without blocking this process (the server
// the test started answers from it meanwhile).
import assert from 'node:assert/strict';
import { findExecutable } from '../../src/exec/tools.ts';
import { runAsync as runProgramAsync } from '../helpers.ts';
import { NAME } from './helpers.ts';

export const VAGRANT = findExecutable('vagrant');

export interface Run {
  code: number | null;
  output: string;
}

/** Runs a program without blocking this process; its stdout and stderr together. */
export async function runAsync(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const { status, output } = await runProgramAsync(command, args, options);
  return { code: status, output };
}

/** vagrant with its own VAGRANT_HOME, offline, no version check. */
export function vagrant(args: string[], options: { home: string; cwd?: string; serverUrl?: string; env?: NodeJS.ProcessEnv }): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, VAGRANT_HOME: options.home, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1' };
  delete env.VAGRANT_SERVER_URL;
  if (options.serverUrl) env.VAGRANT_SERVER_URL = options.serverUrl;
  return runAsync(VAGRANT!, args, { cwd: options.cwd ?? options.home, env });
}

/** vagrant said it added `name` (the publish tests' box unless named) at `version` for libvirt. */
export function assertAdded(run: Run, version: string, name = NAME): void {
  assert.equal(run.code, 0, run.output);
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  assert.match(run.output, new RegExp(`Successfully added box '${escape(name)}' \\(v${escape(version)}\\) for 'libvirt'`));
}
