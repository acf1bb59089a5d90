// What boxsmith needs from the host it runs on, checked before any work starts, so that a wrong
// environment variable is one line naming it rather than a failure deep inside a build.
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
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

/** A folder boxsmith writes into (created when missing); an error naming `variable` when it cannot be. */
export function writableFolder(variable: string, dir: string): string {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOTDIR' || code === 'EEXIST' ? 'a file is in the way' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'not writable' : code ?? (error as Error).message;
    throw new EnvironmentError(`${variable}=${path.resolve(dir)}: cannot write there (${why}); point ${variable} at a writable folder`);
  }
  return dir;
}

/** Packer and Vagrant keep their state under HOME; without it they fail in obscure ways. */
export function requireHome(env: NodeJS.ProcessEnv = process.env): void {
  if (!env.HOME) throw new EnvironmentError('HOME is not set: Packer and Vagrant keep their state under it; set HOME to your home folder');
}
