// What boxsmith needs from the host it runs on, checked before any work starts, so that a wrong
// environment variable is one line naming it rather than a failure deep inside a build.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { findExecutable, toolEnvVar } from './exec/tools.ts';

/** The host or the environment is not as boxsmith needs it; the message names what to change. */
export class EnvironmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvironmentError';
  }
}

/**
 * A BOXSMITH_<TOOL> that is set (see src/exec/tools.ts) must name a program that exists and may be
 * run. Hypervisors are not checked here: one that is missing means the host cannot build for that
 * provider, and the build plan skips it saying so.
 */
export function checkToolOverrides(tools: ('packer' | 'vagrant')[], env: NodeJS.ProcessEnv = process.env): void {
  for (const tool of tools) {
    const variable = toolEnvVar(tool);
    const value = env[variable];
    if (value === undefined || value.trim() === '') continue;
    if (findExecutable(value, env) === null) {
      throw new EnvironmentError(`${variable}=${value}: no such program (not an executable file${value.includes('/') ? '' : ' on PATH'}); fix or unset ${variable}`);
    }
  }
}

/** An existing folder named by a variable (e.g. BOXSMITH_DEFINITIONS), or an error naming the variable. */
export function existingFolder(variable: string, dir: string): string {
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    throw new EnvironmentError(`${variable}=${dir}: no such folder`);
  }
  if (!isDirectory) throw new EnvironmentError(`${variable}=${dir}: not a folder`);
  return dir;
}

/**
 * A folder boxsmith writes into: it is a writable folder, or it can be made in the nearest folder
 * above it that exists. Nothing is created here (the work creates what it needs, and records what
 * it made); an error names `variable`.
 */
export function writableFolder(variable: string, dir: string): string {
  const wanted = path.resolve(dir);
  let existing = wanted;
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  // `BOXSMITH_LOGS=/x`, or (an option's value) `--to static:/x`.
  const named = variable.endsWith(':') ? `${variable}${wanted}` : `${variable}=${wanted}`;
  const refuse = (why: string) => new EnvironmentError(`${named}: cannot write there (${why}); point ${variable.replace(/:$/, '')} at a writable folder`);
  if (!statSync(existing).isDirectory()) throw refuse(existing === wanted ? 'not a folder' : `${existing} is a file, in the way`);
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch {
    throw refuse(existing === wanted ? 'not writable' : `${existing} is not writable`);
  }
  return wanted;
}

/** Packer and Vagrant keep their state under HOME; without it they fail in obscure ways. */
export function requireHome(env: NodeJS.ProcessEnv = process.env): void {
  if (!env.HOME) throw new EnvironmentError('HOME is not set: Packer and Vagrant keep their state under it; set HOME to your home folder');
}
