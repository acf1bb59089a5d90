// Which program boxsmith runs for each external tool. BOXSMITH_<NAME> selects
// a specific binary (a pinned Packer, a wrapper script, a fake in tests);
// otherwise the usual program name is looked up on PATH at spawn time.

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** Program names that differ from the short tool name boxsmith uses. */
const DEFAULT_PROGRAM: Record<string, string> = {
  qemu: 'qemu-system-x86_64',
  vboxmanage: 'VBoxManage',
};

/** `packer` → `BOXSMITH_PACKER`, `qemu-img` → `BOXSMITH_QEMU_IMG`. */
export function toolEnvVar(name: string): string {
  return `BOXSMITH_${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`;
}

/**
 * The program to run for a tool: `$BOXSMITH_<NAME>` when set and non-empty,
 * else the default program name (`qemu` → `qemu-system-x86_64`), which the
 * spawn resolves on PATH.
 */
export function toolPath(name: 'packer' | 'qemu' | 'vagrant' | (string & {}), env: NodeJS.ProcessEnv = process.env): string {
  const override = env[toolEnvVar(name)];
  if (override !== undefined && override.trim() !== '') return override;
  return DEFAULT_PROGRAM[name.toLowerCase()] ?? name;
}

/**
 * Resolves a command the way execvp does: a name containing "/" is taken as
 * a path; a bare name is searched on PATH. Returns the executable's path, or
 * null when there is none (so callers can say "not found" instead of
 * spawning and decoding ENOENT).
 */
export function findExecutable(command: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string | null {
  if (command === '') return null;
  if (command.includes('/')) {
    const path = isAbsolute(command) ? command : join(cwd, command);
    return isExecutableFile(path) ? path : null;
  }
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const candidate = join(dir === '' ? cwd : dir, command);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
