// Starting a supervised child: the environment it gets (boxsmith's own without registry secrets,
// the caller's variables, and the run's and task's tags by which its descendants are found
// later), its own cgroup v2 where the host allows one (entered before the program runs, so not
// even its first fork escapes), its own session and process group (detached: setsid), stdin
// closed and stdout/stderr into the stage log.
import { spawn, type ChildProcess } from 'node:child_process';
import { TaskCgroup, taskCgroupName } from './cgroup.ts';
import { childEnvironment } from './child-env.ts';
import { StageFailedError } from './errors.ts';
import { RUN_ID_ENV, TASK_ID_ENV } from './run-id.ts';
import type { StageLog } from './stage-log.ts';
import type { SuperviseOptions } from './supervise-types.ts';
import { findExecutable } from './tools.ts';

/** The child's environment: `extra` over boxsmith's own (secrets removed), tagged with the run and the task. */
export function taskEnvironment(extra: SuperviseOptions['env'], runId: string, taskId: string): NodeJS.ProcessEnv {
  const env = childEnvironment(process.env);
  delete env[RUN_ID_ENV];
  delete env[TASK_ID_ENV];
  for (const [name, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  env[RUN_ID_ENV] = runId;
  env[TASK_ID_ENV] = taskId;
  return env;
}

export interface StartedChild {
  child: ChildProcess;
  pid: number;
  cgroup: TaskCgroup | null;
  startedAt: Date;
}

/** Spawns the program; throws StageFailedError (noted in the log) when it is missing or cannot start. */
export async function startChild(
  opts: SuperviseOptions,
  task: { runId: string; taskNumber: number; env: NodeJS.ProcessEnv; cwd: string; log: StageLog },
): Promise<StartedChild> {
  const { env, cwd, log } = task;
  const failedToStart = (startError: Error, note = startError.message): StageFailedError => {
    log.note(note);
    return new StageFailedError(opts.stage, { command: opts.command, exitCode: null, signal: null, logFile: opts.logFile, logTail: [], startError });
  };
  if (findExecutable(opts.command, env, cwd) === null) {
    throw failedToStart(new Error(opts.command.includes('/') ? `${opts.command} does not exist or is not executable` : `${opts.command} was not found on PATH`));
  }

  let cgroup: TaskCgroup | null = null;
  if (opts.cgroup !== false) {
    const created = TaskCgroup.create(taskCgroupName(task.runId, task.taskNumber));
    if (created instanceof TaskCgroup) cgroup = created;
    else log.note(`no cgroup containment (${created.unavailable}); relying on the process group and the ${TASK_ID_ENV} tag`);
  }
  const spawnSpec = cgroup ? cgroup.wrapCommand(opts.command, opts.args) : { command: opts.command, args: opts.args };
  const startedAt = new Date();
  const child = spawn(spawnSpec.command, spawnSpec.args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid === undefined) {
    const startError = await new Promise<Error>((resolve) => child.once('error', resolve));
    cgroup?.remove();
    throw failedToStart(startError, `could not start: ${startError.message}`);
  }
  child.on('error', (error) => log.note(`child process error: ${error.message}`));
  child.stdout?.on('data', (chunk: Buffer) => log.write('stdout', chunk));
  child.stderr?.on('data', (chunk: Buffer) => log.write('stderr', chunk));
  child.stdout?.once('end', () => log.flush('stdout'));
  child.stderr?.once('end', () => log.flush('stderr'));
  return { child, pid: child.pid, cgroup, startedAt };
}
