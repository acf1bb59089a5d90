// Run ids tag every process boxsmith starts (in its environment), so that
// the whole run can be found and ended even after processes left their
// process group (setsid, double fork) or boxsmith itself died.

import { randomBytes } from 'node:crypto';

/** Environment variable naming the run every supervised process belongs to. */
export const RUN_ID_ENV = 'BOXSMITH_RUN_ID';
/** Environment variable naming the single supervised child (stage invocation) a process descends from. */
export const TASK_ID_ENV = 'BOXSMITH_TASK_ID';

let processRunId: string | undefined;

/** A fresh run id: sortable timestamp plus randomness, safe in file names and env values. */
export function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/**
 * This boxsmith process's run id, created on first use. Never inherited from
 * the environment: a boxsmith started under another one must not treat its
 * parent's processes as its own.
 */
export function defaultRunId(): string {
  processRunId ??= newRunId();
  return processRunId;
}

/** The environment entry ("BOXSMITH_RUN_ID=...") that marks a process as part of the run. */
export function runTag(runId: string): string {
  return `${RUN_ID_ENV}=${runId}`;
}
