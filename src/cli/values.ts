// Parsers of option values, shared by the commands. Each returns the value or throws a message
// saying what was expected; src/cli/spec.ts adds the command and option to it.
import { BOX_COMPRESSIONS, PROVIDERS, STAGES, type BoxCompression, type Provider } from '../definitions/names.ts';
import { COMPRESSION_LEVELS } from '../definitions/compression-level.ts';
import { parseTimeoutOverrides } from '../exec/timeouts.ts';
import { isBoxVersion, isNewBoxVersion } from '../store/box-store.ts';
import { parseTarget, type PublishTarget } from '../publish/target.ts';

export function wholeNumber(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) throw new Error(`takes a whole number > 0, not "${text}"`);
  return Number(text);
}

export function port(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw new Error(`takes a port from 1 to 65535, not "${text}"`);
  return Number(text);
}

/** A port, or 0 for any free one. */
export function portOrAny(text: string): number {
  return text === '0' ? 0 : port(text);
}

/** `build=90m,smoke=20m,run=3h`: per stage, and `run` for the whole run. */
export function stageTimeouts(text: string): Record<string, number> {
  return parseTimeoutOverrides(text, STAGES);
}

/** A version a build writes: dotted numbers, 1 to 3 of them. */
export function newBoxVersion(text: string): string {
  if (!isNewBoxVersion(text)) throw new Error(`version "${text}" is not a Vagrant box version (numbers: 1.2.3)`);
  return text;
}

/** A version of a built box, as Vagrant reads versions (1.2.3, 20261128.163000.0, 2.0.rc1). */
export function boxVersion(text: string): string {
  if (!isBoxVersion(text)) throw new Error(`version "${text}" is not a Vagrant box version (e.g. 1.2.3 or 20261128.163000.0)`);
  return text;
}

/** gzip, zstd or xz. */
export function boxCompression(text: string): BoxCompression {
  if (!(BOX_COMPRESSIONS as readonly string[]).includes(text)) throw new Error(`takes ${BOX_COMPRESSIONS.join(', ')}, not "${text}"`);
  return text as BoxCompression;
}

/** A whole number some compression takes (0-19); checked against the compression in effect once the definitions are read. */
export function compressionLevel(text: string): number {
  const highest = Math.max(...Object.values(COMPRESSION_LEVELS).map((levels) => levels.max));
  if (!/^\d+$/.test(text) || Number(text) > highest) {
    const ranges = Object.entries(COMPRESSION_LEVELS).map(([name, { min, max }]) => `${name} ${min}-${max}`).join(', ');
    throw new Error(`takes a compression level (${ranges}), not "${text}"`);
  }
  return Number(text);
}

/** `qemu` or `qemu,virtualbox`. */
export function providers(text: string): Provider[] {
  const names = text.split(',').filter(Boolean);
  if (!names.length) throw new Error(`needs a provider: ${PROVIDERS.join(', ')}`);
  for (const name of names) {
    if (!(PROVIDERS as readonly string[]).includes(name)) throw new Error(`unknown provider "${name}" (one of ${PROVIDERS.join(', ')})`);
  }
  return names as Provider[];
}

/** Where the user ran the command: `npm run` starts scripts in the package folder, and says where it was run in INIT_CWD. */
export function invocationDirectory(): string {
  return process.env.INIT_CWD ?? process.cwd();
}

/** A publish target, with a static folder taken relative to where the command was run. */
export function publishTarget(text: string): PublishTarget {
  return parseTarget(text, invocationDirectory());
}

/** Any text that is not empty (an image name, a folder). */
export function nonEmpty(text: string): string {
  if (text.trim() === '') throw new Error('needs a value, not an empty one');
  return text;
}
