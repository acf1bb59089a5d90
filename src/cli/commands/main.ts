// The dispatcher: finds the command, checks its whole command line against its declaration
// (src/cli/commands/<command>.ts), runs it, and ends every failure the one way (src/cli/errors.ts).
import { build } from './build.ts';
import { checksums } from './checksums.ts';
import { list } from './list.ts';
import { mirror } from './mirror.ts';
import { nginxConf } from './nginx-conf.ts';
import { nightly } from './nightly.ts';
import { publish } from './publish.ts';
import { render } from './render.ts';
import { reportMerge } from './report-merge.ts';
import { serve } from './serve.ts';
import { test } from './test.ts';
import { reportError, UsageError } from '../errors.ts';
import { commandHelp, parseCommandLine, type CommandSpec } from '../spec.ts';

export const COMMANDS: readonly CommandSpec[] = [list, render, build, test, publish, mirror, serve, nginxConf, checksums, nightly, reportMerge];

export function overallHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return [
    'usage: boxsmith <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    "`boxsmith <command> --help` lists a command's options.",
  ].join('\n');
}

async function dispatch(argv: readonly string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined) {
    console.error(overallHelp());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const about = name === 'help' ? args[0] : undefined;
    if (about === undefined) {
      console.log(overallHelp());
      return 0;
    }
    const command = COMMANDS.find((candidate) => candidate.name === about);
    if (!command) throw new UsageError(`help: unknown command "${about}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
    console.log(commandHelp(command));
    return 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) throw new UsageError(`unknown command "${name}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
  const parsed = parseCommandLine(command, args);
  if (parsed.help) {
    console.log(commandHelp(command));
    return 0;
  }
  // parseCommandLine made each value from the command's own declaration, so its types are the declared ones.
  return await command.run({ options: parsed.options as Parameters<CommandSpec['run']>[0]['options'], positionals: parsed.positionals });
}

/** Runs boxsmith with its arguments (without `node` and the script); the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (error) {
    return reportError(error, argv);
  }
}
