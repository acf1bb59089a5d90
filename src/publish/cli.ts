// The two commands of publishing, for src/cli.ts to dispatch to:
//   publish <box> --to <target> [--version V] [--dry-run] [--keep N] [--allow-untested]
//   serve [DIR] [--port P]
// Each parses its own arguments and returns the exit code: 0 done, 1 failed, 2 wrong usage,
// 130/143 interrupted. Expected failures print one message, never a stack trace, never a secret.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DefinitionError, UnknownBoxError } from '../definitions/errors.ts';
import { installInterruptHandlers } from '../exec/signals.ts';
import { FolderOwnershipError } from '../files/owned-folder.ts';
import { ApiResponseError, PublishError, PublishUsageError } from './errors.ts';
import { boxesRoot, publishBox, redactorFor } from './publish.ts';
import { formatReport } from './report.ts';
import { DEFAULT_SERVE_PORT, startCatalogServer } from './server.ts';
import { DEFAULT_KEEP } from './static-target.ts';
import { parseTarget, TARGET_SYNTAX } from './target.ts';

export const PUBLISH_USAGE = `usage: boxsmith publish <box> --to <target> [options]

Publishes a built box version whose smoke test passed.

targets (--to):
  static:DIR[,base-url=URL]   a catalog tree for any static web server; without base-url the
                              catalog points at the boxes by file:// URL
  vagrant-cloud[:OWNER]       Vagrant Cloud (API v2); token in VAGRANT_CLOUD_TOKEN
  hcp[:REGISTRY]              HCP Vagrant Box Registry; HCP_CLIENT_ID and HCP_CLIENT_SECRET

options:
  --version V        the version to publish (default: the newest built)
  --dry-run          say what would be copied, written and sent; change nothing
  --keep N           static: versions the catalog keeps (default ${DEFAULT_KEEP}); older ones are deleted
  --allow-untested   also publish boxes that did not pass their smoke test (warns for each)`;

export const SERVE_USAGE = `usage: boxsmith serve [DIR] [--port P]

Serves a catalog tree on 127.0.0.1 (default DIR: BOXSMITH_CATALOG or <boxes>/catalog,
default port ${DEFAULT_SERVE_PORT}), then:
  VAGRANT_SERVER_URL=http://127.0.0.1:${DEFAULT_SERVE_PORT} vagrant box add <org>/<box>`;

/** Where the user ran the command: `npm run` starts scripts in the package folder, and says where it was run in INIT_CWD. */
function invocationDirectory(): string {
  return process.env.INIT_CWD ?? process.cwd();
}

function usageError(message: string, usage: string): number {
  console.error(`boxsmith: ${message}${usage ? `\n${usage}` : ''}`);
  return 2;
}

function parseCount(text: string, what: string, minimum: number, maximum = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < minimum || value > maximum) throw new PublishUsageError(`${what} takes a whole number from ${minimum}${maximum < Number.MAX_SAFE_INTEGER ? ` to ${maximum}` : ''}, not "${text}"`);
  return value;
}

export async function commandPublish(args: string[]): Promise<number> {
  const redactor = redactorFor(process.env);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        to: { type: 'string' },
        version: { type: 'string' },
        'dry-run': { type: 'boolean' },
        keep: { type: 'string' },
        'allow-untested': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return usageError((error as Error).message, PUBLISH_USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(PUBLISH_USAGE);
    return 0;
  }
  const controller = new AbortController();
  const interrupts = installInterruptHandlers(controller);
  try {
    const [box, ...extra] = positionals;
    if (!box || extra.length) throw new PublishUsageError(`publish takes one box name${extra.length ? ` (got also ${extra.join(' ')})` : ''}`);
    if (!values.to) throw new PublishUsageError(`publish needs --to: ${TARGET_SYNTAX}`);
    const target = parseTarget(values.to, invocationDirectory());
    if (values.keep !== undefined && target.kind !== 'static') throw new PublishUsageError('--keep applies to static targets only (registries keep what they are given)');
    const keep = values.keep === undefined ? undefined : parseCount(values.keep, '--keep', 1);
    const report = await publishBox({
      box,
      target,
      ...(values.version ? { version: values.version } : {}),
      boxesDir: boxesRoot(),
      dryRun: values['dry-run'] ?? false,
      ...(keep !== undefined ? { keep } : {}),
      allowUntested: values['allow-untested'] ?? false,
      signal: controller.signal,
    });
    console.log(redactor.redact(formatReport(report)));
    // The warnings again at the end, where a reader of a long log looks.
    for (const warning of report.warnings) console.error(redactor.redact(warning));
    return report.ok ? 0 : 1;
  } catch (error) {
    if (interrupts.exitCode !== null) {
      console.error('boxsmith: publishing interrupted; nothing more was sent, and an unreleased version stays unreleased');
      return interrupts.exitCode;
    }
    if (error instanceof PublishUsageError || error instanceof UnknownBoxError || error instanceof DefinitionError || error instanceof FolderOwnershipError) {
      return usageError(redactor.redact(error.message), error instanceof PublishUsageError ? PUBLISH_USAGE : '');
    }
    // System errors (no space left, permission denied) are the host's to fix: their message says enough.
    const systemError = typeof (error as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((error as NodeJS.ErrnoException).code!);
    if (error instanceof PublishError || error instanceof ApiResponseError || systemError) {
      console.error(`boxsmith: ${redactor.redact((error as Error).message)}`);
      return 1;
    }
    // A bug, not an expected failure: its stack helps, but goes through the redactor too.
    console.error(`boxsmith: publishing failed unexpectedly: ${redactor.redact(error instanceof Error ? (error.stack ?? error.message) : String(error))}`);
    return 1;
  } finally {
    interrupts.dispose();
  }
}

export async function commandServe(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { port: { type: 'string', short: 'p' }, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    return usageError((error as Error).message, SERVE_USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  if (positionals.length > 1) return usageError(`serve takes one directory, not ${positionals.length}`, SERVE_USAGE);
  let port: number;
  try {
    port = values.port === undefined ? DEFAULT_SERVE_PORT : parseCount(values.port, '--port', 0, 65535);
  } catch (error) {
    return usageError((error as Error).message, SERVE_USAGE);
  }
  const root = path.resolve(invocationDirectory(), positionals[0] ?? process.env.BOXSMITH_CATALOG ?? path.join(boxesRoot(), 'catalog'));
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    return usageError(`${root} is not a directory: publish into it first (--to static:${root})`, SERVE_USAGE);
  }

  let server;
  try {
    server = await startCatalogServer({ root, port, onRequest: (line) => console.log(line) });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    console.error(`boxsmith: cannot serve on 127.0.0.1:${port}: ${code === 'EADDRINUSE' ? 'the port is in use; pick another with --port' : (error as Error).message}`);
    return 1;
  }
  console.log(`serving ${root} at ${server.url} (Ctrl-C stops)`);
  const names = catalogNames(root);
  for (const name of names) console.log(`  VAGRANT_SERVER_URL=${server.url} vagrant box add ${name}   or   vagrant box add ${server.url}/${name}.json`);
  if (!names.length) console.log('  (no catalogs in it yet)');

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (received: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(received);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  console.log(`stopped (${signal})`);
  return 0;
}

/** `org/box` of each catalog in a tree (the `<org>/<box>.json` files). */
function catalogNames(root: string): string[] {
  const names: string[] = [];
  for (const org of readdirSync(root, { withFileTypes: true })) {
    if (!org.isDirectory() || org.name.startsWith('.')) continue;
    for (const file of readdirSync(path.join(root, org.name))) {
      if (!file.endsWith('.json') || file.startsWith('.')) continue;
      try {
        const { name } = JSON.parse(readFileSync(path.join(root, org.name, file), 'utf8')) as { name?: unknown };
        if (typeof name === 'string') names.push(name);
      } catch {
        // Not a catalog: not listed.
      }
    }
  }
  return names.sort();
}
