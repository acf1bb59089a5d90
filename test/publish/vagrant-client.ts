// Debian's vagrant as the tests run it: its own VAGRANT_HOME, offline, no version check, started
// without blocking this process (a catalog server in the test answers it meanwhile).
import assert from 'node:assert/strict';
import { findExecutable } from '../../src/exec/tools.ts';
import { runAsync } from '../helpers.ts';
import { NAME } from './helpers.ts';

export const VAGRANT = findExecutable('vagrant');

export interface Run {
  code: number | null;
  output: string;
}

export function vagrant(args: string[], options: { home: string; cwd?: string; serverUrl?: string }): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, VAGRANT_HOME: options.home, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1' };
  delete env.VAGRANT_SERVER_URL;
  if (options.serverUrl) env.VAGRANT_SERVER_URL = options.serverUrl;
  return runAsync(VAGRANT!, args, { cwd: options.cwd ?? options.home, env }).then(({ status, output }) => ({ code: status, output }));
}

export function assertAdded(run: Run, version: string, name = NAME): void {
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`Successfully added box '${name.replace(/\./g, '\\.')}' \\(v${version.replace(/\./g, '\\.')}\\) for 'libvirt'`));
}
