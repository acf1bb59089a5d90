// How a command is declared: its positionals and options, each with its help text and the parser
// that turns the text into a value (and refuses a bad one), so that every command checks its
// whole command line before it does anything, and `--help` is written from the same declaration.
import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';

interface OptionBase {
  help: string;
  short?: string;
}
/** A switch: --dry-run. */
export interface FlagOption extends OptionBase {
  kind: 'flag';
}
/** An option with a value, given once: --version 1.2.3. */
export interface ValueOption<T> extends OptionBase {
  kind: 'value';
  /** The placeholder in the help: --version V. */
  placeholder: string;
  parse: (text: string) => T;
}
/** An option with a value that may be repeated: --box a --box b. */
export interface ListOption<T> extends OptionBase {
  kind: 'list';
  placeholder: string;
  parse: (text: string) => T;
}
export type OptionSpec = FlagOption | ValueOption<unknown> | ListOption<unknown>;

export const flag = (help: string, more: { short?: string } = {}): FlagOption => ({ kind: 'flag', help, ...more });
export const value = <T>(placeholder: string, help: string, parse: (text: string) => T, more: { short?: string } = {}): ValueOption<T> => ({ kind: 'value', placeholder, help, parse, ...more });
export const list = <T>(placeholder: string, help: string, parse: (text: string) => T): ListOption<T> => ({ kind: 'list', placeholder, help, parse });

/** The parsed value of each declared option: false/undefined/[] when not given. */
export type OptionValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K] extends FlagOption ? boolean : O[K] extends ListOption<infer T> ? T[] : O[K] extends ValueOption<infer T> ? T | undefined : never;
};

export interface Positionals {
  /** e.g. `<box>`, `<box>...`, `[DIR]`. */
  synopsis: string;
  min: number;
  max: number;
  /** What the positionals are, for the error when there are too few or too many: "one box name". */
  what: string;
}

export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  name: string;
  /** One line for `boxsmith --help`. */
  summary: string;
  /** More lines for `boxsmith <command> --help`. */
  description?: string;
  positionals: Positionals;
  options: O;
  run: (input: { options: OptionValues<O>; positionals: string[] }) => Promise<number> | number;
}

export function defineCommand<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): CommandSpec {
  return spec as unknown as CommandSpec;
}

export const NO_POSITIONALS: Positionals = { synopsis: '', min: 0, max: 0, what: 'no arguments' };

/** Messages of node's parseArgs, in boxsmith's words. */
function parseArgsMessage(error: Error & { code?: string }): string {
  const quoted = /'(-[^' ]*)/.exec(error.message)?.[1] ?? '';
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${quoted}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(error.message)) return `${quoted} takes no value`;
      // `--parallel -1`: parseArgs does not take a value that starts with a dash unless joined by `=`.
      if (/ambiguous/.test(error.message)) return `${quoted} needs a value; one that starts with "-" is written ${quoted}=VALUE`;
      return `${quoted} needs a value`;
    default:
      return error.message.split('\n')[0]!;
  }
}

/** `--name takes ...` or `--name: message`, unless the message already starts with the option. */
function aboutOption(name: string, message: string): string {
  if (message.startsWith(`--${name} `)) return message;
  return /^(takes|needs) /.test(message) ? `--${name} ${message}` : `--${name}: ${message}`;
}

/** Parses and checks a command line; `help` when --help was asked for. */
export function parseCommandLine(spec: CommandSpec, args: string[]): { help: true } | { help: false; options: Record<string, unknown>; positionals: string[] } {
  const declared: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, option] of Object.entries(spec.options)) {
    declared[name] = { type: option.kind === 'flag' ? 'boolean' : 'string', ...(option.kind === 'list' ? { multiple: true } : {}), ...(option.short ? { short: option.short } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: declared, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${spec.name}: ${parseArgsMessage(error as Error & { code?: string })}`, spec.name);
  }
  if (parsed.values.help) return { help: true };
  const { positionals } = parsed;
  const { min, max, what } = spec.positionals;
  if (positionals.length < min || positionals.length > max) {
    const got = positionals.length ? `got ${positionals.length}: ${positionals.join(' ')}` : 'got none';
    throw new UsageError(`${spec.name} takes ${what} (${got})`, spec.name);
  }
  const options: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(spec.options)) {
    const given = parsed.values[name] as string | boolean | string[] | undefined;
    const parse = (text: string) => {
      try {
        return (option as ValueOption<unknown>).parse(text);
      } catch (error) {
        throw new UsageError(`${spec.name}: ${aboutOption(name, (error as Error).message)}`, spec.name);
      }
    };
    if (option.kind === 'flag') options[name] = given === true;
    else if (option.kind === 'list') options[name] = ((given as string[] | undefined) ?? []).map(parse);
    else options[name] = given === undefined ? undefined : parse(given as string);
  }
  return { help: false, options, positionals };
}

export function commandHelp(spec: CommandSpec): string {
  const rows = [...Object.entries(spec.options), ['help', flag('this help', { short: 'h' })] as const].map(([name, option]) => {
    const left = `${option.short ? `-${option.short}, ` : ''}--${name}${option.kind === 'flag' ? '' : ` ${option.placeholder}`}${option.kind === 'list' ? ' (repeatable)' : ''}`;
    return [left, option.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length));
  return [
    `usage: boxsmith ${spec.name}${spec.positionals.synopsis ? ` ${spec.positionals.synopsis}` : ''}${Object.keys(spec.options).length ? ' [options]' : ''}`,
    '',
    spec.summary,
    ...(spec.description ? ['', spec.description] : []),
    '',
    'options:',
    ...rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help.replaceAll('\n', `\n  ${' '.repeat(width)}  `)}`),
  ].join('\n');
}
