// boxsmith's command line: `list`, `render`, and the pipeline commands built on them.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildSummary, runBuilds, planBuilds } from './build/run.ts';
import { commandNightly } from './nightly.ts';
import { commandChecksums } from './checksums.ts';
import { commandTestBox } from './smoke/command.ts';
import { commandPublish, commandServe } from './publish/cli.ts';
import { DefinitionError, displayPath, UnknownBoxError } from './definitions/errors.ts';
import { STAGES, type Provider } from './definitions/schema.ts';
import { HostSetupError } from './exec/errors.ts';
import { parseDuration, parseTimeoutOverrides } from './exec/timeouts.ts';
import { cacheRoot } from './inputs/iso.ts';
import { listBoxes, loadDefinition } from './definitions/load.ts';
import { FolderOwnershipError } from './files/owned-folder.ts';
import { REPO_ROOT, renderToUserDirectory } from './render/render.ts';
import { defaultVersion, outputDirectories, packerVersionFor, parseProviderList } from './run-settings.ts';

/** A failure the user can act on: printed as one message, no stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const USAGE = `usage: boxsmith <command> [options]

commands:
  list                          the boxes, with their providers and base
  render <box> [--out DIR]      write a self-contained Packer build directory
         [--force]              replace DIR even though it holds files boxsmith did not write
         [--packer-version V]   render for this Packer version instead of the installed one
  build <box>... [options]      build .box files into boxes/<org>/<name>/<version>/
         --provider P           virtualbox, vmware or qemu (repeatable; default: every
                                provider of the box whose hypervisor this host has)
         --version V            the box version (default: YYYYMMDD.HHMMSS.0, UTC)
         --parallel N           builds at once (default: from cores and free memory)
         --timeout S=D,...      stage time limits, e.g. build=90m,package=10m,run=3h
         --grace D              between SIGTERM and SIGKILL of a stopped stage (default 10s)
         --no-test              do not smoke-test the boxes before putting them in place
         --docker-image IMG     smoke-test Docker with a registry image (e.g. hello-world)
                                instead of one built in the guest (needs the guest online)
         --keep-work            keep Packer's work folders (VM disks) for debugging
         --no-apt-cache         do not start the package cache
         --apt-cache-port P     the package cache's port (default 3142, or any free one)
  test <box> [--provider P] [--version V] [--docker-image IMG]
                                smoke-test a built box (default: its newest version)
  publish <box> --to <target> [--version V] [--dry-run] [--keep N] [--allow-untested]
                                targets: static:DIR[,base-url=URL], vagrant-cloud, hcp
  serve [DIR] [--port P]        serve a static catalog tree on 127.0.0.1
  checksums [box...] [--refresh] compare pinned ISO checksums with the releases' SHA256SUMS;
                                --refresh rewrites the pin where they differ
  nightly [--box B]... [--to TARGET] [--dry-run] [--parallel N] [--timeout S=D,...] [--keep N]
                                build and smoke-test every box this host can build, publish
                                those that passed, and write a report into reports/`;

function commandList(): void {
  const rows = listBoxes().map((box) => {
    const { definition } = loadDefinition(box);
    const base =
      definition.base.kind === 'iso'
        ? `iso ${definition.base.iso!.file}`
        : `debootstrap ${definition.base.debootstrap!.suite} (${definition.base.debootstrap!.mirror})`;
    return [box, `${definition.org}/${definition.box_name}`, definition.providers.join(','), base];
  });
  const header = ['BOX', 'NAME', 'PROVIDERS', 'BASE'];
  const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) {
    console.log(row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '));
  }
}

function commandRender(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' }, force: { type: 'boolean' }, 'packer-version': { type: 'string' } },
  });
  const [box, ...extra] = positionals;
  if (!box || extra.length) throw new UsageError(`render takes one box name\n${USAGE}`);
  const packer = packerVersionFor(values['packer-version']);
  const outDir = path.resolve(values.out ?? path.join(REPO_ROOT, 'build', box));
  const { files } = renderToUserDirectory(box, outDir, { packer, force: values.force ?? false });
  console.log(`rendered ${box} for Packer ${packer.version} into ${path.relative(process.cwd(), outDir) || '.'} (${files.length} files)`);
}

async function commandBuild(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      provider: { type: 'string', multiple: true },
      version: { type: 'string' },
      parallel: { type: 'string' },
      timeout: { type: 'string' },
      'keep-work': { type: 'boolean' },
      grace: { type: 'string' },
      'no-test': { type: 'boolean' },
      'docker-image': { type: 'string' },
      'no-apt-cache': { type: 'boolean' },
      'apt-cache-port': { type: 'string' },
      'packer-version': { type: 'string' },
    },
  });
  if (!positionals.length) throw new UsageError(`build takes one or more box names\n${USAGE}`);
  let providers: Provider[];
  try {
    providers = parseProviderList(values.provider);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const version = values.version ?? defaultVersion();
  if (!/^\d+(\.\d+){0,2}$/.test(version)) throw new UsageError(`version "${version}" is not a Vagrant box version (numbers: 1.2.3)`);
  const parallel = values.parallel === undefined ? undefined : Number(values.parallel);
  if (parallel !== undefined && !(Number.isInteger(parallel) && parallel > 0)) throw new UsageError(`--parallel takes a whole number > 0, not "${values.parallel}"`);
  let timeoutOverrides: Record<string, number>;
  try {
    timeoutOverrides = values.timeout ? parseTimeoutOverrides(values.timeout, STAGES) : {};
  } catch (error) {
    throw new UsageError(`--timeout: ${(error as Error).message}`);
  }
  let graceMs: number | undefined;
  try {
    graceMs = values.grace === undefined ? undefined : parseDuration(values.grace);
  } catch (error) {
    throw new UsageError(`--grace: ${(error as Error).message}`);
  }
  const boxes = positionals.map((box) => loadDefinition(box));
  const plan = (() => {
    try {
      return planBuilds(boxes, providers);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  })();
  for (const skipped of plan.skipped) console.log(`skipping ${skipped.box} for ${skipped.provider}: ${skipped.reason}`);
  if (!plan.targets.length) {
    console.error(`boxsmith: nothing to build: ${plan.skipped.map((s) => `${s.provider} (${s.reason})`).join('; ')}`);
    return 1;
  }

  const outcome = await runBuilds({
    targets: plan.targets,
    version,
    packer: packerVersionFor(values['packer-version']),
    ...(parallel !== undefined ? { parallel } : {}),
    timeoutOverrides,
    ...outputDirectories(),
    cacheDir: cacheRoot(),
    keepWork: values['keep-work'] ?? false,
    ...(graceMs !== undefined ? { graceMs } : {}),
    smokeTest: !values['no-test'],
    ...(values['docker-image'] ? { dockerImage: values['docker-image'] } : {}),
    aptCache: !values['no-apt-cache'],
    ...(values['apt-cache-port'] ? { aptCachePort: Number(values['apt-cache-port']) } : {}),
  });
  console.log(`\n${buildSummary(outcome.results, plan.skipped)}`);
  if (outcome.interruptExitCode !== null) return outcome.interruptExitCode;
  // A provider asked for by name that cannot be built is a failure; one left out by default is not.
  const requestedButSkipped = providers.length > 0 && plan.skipped.length > 0;
  return outcome.results.every((r) => r.ok) && !requestedButSkipped ? 0 : 1;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'list':
        commandList();
        return 0;
      case 'render':
        commandRender(args);
        return 0;
      case 'build':
        return await commandBuild(args);
      case 'publish':
        return await commandPublish(args);
      case 'nightly':
        return await commandNightly(args);
      case 'checksums':
        return await commandChecksums(args);
      case 'serve':
        return await commandServe(args);
      case 'test': {
        const { boxesDir, logsDir } = outputDirectories();
        return await commandTestBox(args, { boxesDir, logsDir });
      }
      case undefined:
      case 'help':
      case '--help':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"\n${USAGE}`);
    }
  } catch (error) {
    if (error instanceof DefinitionError || error instanceof UnknownBoxError || error instanceof UsageError || error instanceof FolderOwnershipError) {
      console.error(`boxsmith: ${error.message}`);
      return 2;
    }
    if (error instanceof HostSetupError) {
      console.error(`boxsmith: ${error.message}`);
      return 1;
    }
    if (error instanceof TypeError && (error as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`boxsmith: ${error.message}\n${USAGE}`);
      return 2;
    }
    throw error;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/src/cli.ts')) {
  // A reader that went away (a closed pipe) must not crash boxsmith in the middle of its cleanups.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
  // Nothing boxsmith writes is group- or world-writable, whatever umask the caller left (a stricter one stays).
  process.umask(process.umask() | 0o022);
  process.exitCode = await main(process.argv.slice(2));
}
