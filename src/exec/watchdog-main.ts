// Entry point of the watchdog process, started by Watchdog.start() as
//   node [--import tsx] watchdog-main.ts --run-id=ID --log-dir=DIR --grace-ms=N --parent-pid=P --parent-start-time=T
// It prints {"ready":true} on stdout once it reads its stdin, then serves the
// protocol described in watchdog.ts until goodbye or until boxsmith is gone.

import { WatchdogServer } from './watchdog-server.ts';

function parseArgs(argv: string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!match) throw new Error(`unexpected argument: ${arg}`);
    values.set(match[1] as string, match[2] as string);
  }
  return values;
}

function integer(values: Map<string, string>, name: string): number | undefined {
  const text = values.get(name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer, got "${text}"`);
  return value;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const runId = args.get('run-id');
  const logDir = args.get('log-dir');
  if (!runId || !logDir) throw new Error('usage: watchdog-main --run-id=ID --log-dir=DIR [--grace-ms=N] [--parent-pid=P --parent-start-time=T]');
  const server = new WatchdogServer({
    runId,
    logDir,
    graceMs: integer(args, 'grace-ms') ?? 5000,
    parentPid: integer(args, 'parent-pid'),
    parentStartTime: integer(args, 'parent-start-time'),
  });

  // Own session already (no terminal signals); these must not end the watchdog before the run is cleaned up.
  process.on('SIGINT', () => server.log('ignoring SIGINT'));
  process.on('SIGHUP', () => server.log('ignoring SIGHUP'));
  process.on('SIGPIPE', () => {});
  process.on('SIGTERM', () => {
    server.log('stopped by SIGTERM; leaving the run alone');
    process.exit(143);
  });

  server.log(`watching run ${runId} for boxsmith pid ${args.get('parent-pid') ?? '?'}`);
  const served = server.serve(process.stdin);
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
  return served;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`boxsmith watchdog: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(2);
  },
);
