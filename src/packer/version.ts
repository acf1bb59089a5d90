import { execFileSync } from 'node:child_process';
import { toolPath } from '../exec/tools.ts';
import { childEnvironment } from '../exec/child-env.ts';

/** A Packer release, as far as it changes what boxsmith renders and runs. */
export interface PackerVersion {
  version: string;
  /** Packer >= 1.7: plugins live outside the binary, `required_plugins` and `packer init` are needed. */
  modern: boolean;
}

export function parsePackerVersion(text: string): PackerVersion {
  const match = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!match) throw new Error(`cannot read a Packer version from "${text.trim()}"`);
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return { version: match[0], modern: major > 1 || (major === 1 && minor >= 7) };
}

/** The installed Packer's version, or undefined when there is none. */
export function detectPackerVersion(): PackerVersion | undefined {
  try {
    const output = execFileSync(toolPath('packer'), ['version'], { env: childEnvironment(), encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return parsePackerVersion(output.split('\n')[0] ?? '');
  } catch {
    return undefined;
  }
}
