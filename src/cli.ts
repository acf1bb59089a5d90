// boxsmith's command line: `list`, `render`, and the pipeline commands built on them.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DefinitionError, UnknownBoxError } from './definitions/errors.ts';
import { listBoxes, loadDefinition } from './definitions/load.ts';
import { detectPackerVersion, parsePackerVersion, type PackerVersion } from './packer/version.ts';
import { REPO_ROOT, renderToDirectory } from './render/render.ts';

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
         [--packer-version V]   render for this Packer version instead of the installed one`;

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

/** The Packer version to render for: given, installed, or (no Packer here) the modern layout. */
export function packerVersionFor(given: string | undefined): PackerVersion {
  if (given) return parsePackerVersion(given);
  return detectPackerVersion() ?? { version: '1.11.0', modern: true };
}

function commandRender(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' }, 'packer-version': { type: 'string' } },
  });
  const [box, ...extra] = positionals;
  if (!box || extra.length) throw new UsageError(`render takes one box name\n${USAGE}`);
  const packer = packerVersionFor(values['packer-version']);
  const outDir = path.resolve(values.out ?? path.join(REPO_ROOT, 'build', box));
  const { files } = renderToDirectory(box, outDir, { packer });
  console.log(`rendered ${box} for Packer ${packer.version} into ${path.relative(process.cwd(), outDir) || '.'} (${files.length} files)`);
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
      case undefined:
      case 'help':
      case '--help':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"\n${USAGE}`);
    }
  } catch (error) {
    if (error instanceof DefinitionError || error instanceof UnknownBoxError || error instanceof UsageError) {
      console.error(`boxsmith: ${error.message}`);
      return 2;
    }
    if (error instanceof TypeError && (error as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`boxsmith: ${error.message}\n${USAGE}`);
      return 2;
    }
    throw error;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/src/cli.ts')) {
  process.exitCode = await main(process.argv.slice(2));
}
