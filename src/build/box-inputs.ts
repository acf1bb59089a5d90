// The inputs of one box x provider, each a named sha256, and one input hash over them: what decides
// the box a build makes. A nightly rebuilds a cell only when its input hash differs from its last
// good build's (src/nightly/plan.ts); the build record carries both, so the comparison works from
// boxes/ and from what a publish target holds.
//
// The inputs:
// - `definition`: the resolved definition (bases merged);
// - the rendered build directory's files THIS provider's build uses, by their path in it
//   (`box.pkr.hcl`, `scripts/docker.sh`, `http/preseed.cfg`, `keys/vagrant.pub`, `Vagrantfile`...).
//   Which files those are is read from the rendered template itself: the other providers' `source`
//   blocks and the provisioners whose `only = [...]` leaves this source out are cut from it, and
//   the files the rest names under `${path.root}` are the ones hashed. A VMware-only script thus
//   never reaches the qemu cell's hash, with no list to keep by hand;
// - boxsmith's code that shapes the box beyond what it renders: `src/build/step-packer.ts` (the
//   variables and flags Packer runs with), and the packaging, which writes every box's tar:
//   `src/build/step-package.ts`, `src/store/box-packager.ts` and `src/store/box-layouts.ts` (the
//   entries, their order, metadata.json, the compressor). The render code and templates need no entry of their
//   own: their effect on this cell is the rendered files above, and a change that leaves those
//   as they were cannot change the box. The smoke test decides whether a box passes, not what is
//   in it, so it is not an input;
// - `iso`: the pinned ISO checksum, or `base-image`: the base image's cache key (debootstrap suite,
//   mirror, include list, kernel, disk size, and the code and scripts that make it: baseImageKey);
// - `archive`: the InRelease digests of the suite, -updates and -security (src/inputs/archive-state.ts);
// - `packer` and `hypervisor`: the installed versions, as the build record says them.
// An input that cannot be found out (an unreachable archive) is named in `unknown`, and there is no
// input hash then: a box whose inputs are not all known is never taken as unchanged.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LoadedDefinition } from '../definitions/load.ts';
import type { Provider } from '../definitions/schema.ts';
import { archiveState, type ArchiveSuite } from '../inputs/archive-state.ts';
import type { PackerVersion } from '../packer/version.ts';
import { BOX_VAGRANTFILE, sourceRef, PACKER_SOURCES } from '../render/context.ts';
import { REPO_ROOT, renderBox, type RenderedFile } from '../render/render.ts';
import { baseImageKey } from './base-image.ts';
import { runCaptured } from '../exec/captured.ts';
import { toolPath } from '../exec/tools.ts';

/** boxsmith's own files that shape every box beyond what is rendered (see above). */
const SHAPING_CODE = ['src/build/step-packer.ts', 'src/build/step-package.ts', 'src/store/box-packager.ts', 'src/store/box-layouts.ts', 'src/store/parallel-gzip.ts'];

export interface BoxInputs {
  /** sha256 over `inputs` (absent when an input is unknown). */
  input_hash?: string;
  /** Input name -> sha256 of it. */
  inputs: Record<string, string>;
  /** Inputs that could not be found out, with why. */
  unknown: Record<string, string>;
  /** The archive state the hash was made with (for the record and the report). */
  archive?: ArchiveSuite[];
  /** The hypervisor's version line the hash was made with (for the record). */
  hypervisor_version: string;
}

export interface BoxInputOptions {
  packer: PackerVersion;
  /** The build directory's files, when the caller rendered them already. */
  rendered?: RenderedFile[];
  /** Fetches the archive state (default: archiveState, from the definition's mirrors). */
  readArchive?: (loaded: LoadedDefinition) => Promise<ArchiveSuite[]>;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

export async function boxInputs(loaded: LoadedDefinition, provider: Provider, options: BoxInputOptions): Promise<BoxInputs> {
  const { definition } = loaded;
  const rendered = options.rendered ?? renderBox(loaded.box, { packer: options.packer, definitionsDir: path.dirname(loaded.files[0]!) }).files;
  const inputs: Record<string, string> = { definition: sha256(JSON.stringify(definition)) };
  const unknown: Record<string, string> = {};
  for (const [name, content] of usedFiles(rendered, provider)) inputs[name] = sha256(content);
  for (const file of SHAPING_CODE) inputs[file] = sha256(readFileSync(path.join(REPO_ROOT, file)));
  if (definition.base.kind === 'iso') inputs.iso = sha256(definition.base.iso!.checksum);
  // The archive's part of the image's key is the input `archive` below, so a new InRelease is named as that.
  else inputs['base-image'] = sha256(baseImageKey(loaded.box, definition, REPO_ROOT, []));
  let archive: ArchiveSuite[] | undefined;
  try {
    archive = await (options.readArchive ?? ((l: LoadedDefinition) => archiveState(l.definition)))(loaded);
    inputs.archive = sha256(JSON.stringify(archive.map(({ suite, sha256: digest }) => [suite, digest])));
  } catch (error) {
    unknown.archive = (error as Error).message.split('\n')[0]!;
  }
  inputs.packer = sha256(options.packer.version);
  const hypervisor = await hypervisorVersion(provider);
  inputs.hypervisor = sha256(hypervisor);
  return {
    hypervisor_version: hypervisor,
    ...(Object.keys(unknown).length ? {} : { input_hash: inputHash(inputs) }),
    inputs,
    unknown,
    ...(archive ? { archive } : {}),
  };
}

/** sha256 over the named hashes, in name order. */
export function inputHash(inputs: Record<string, string>): string {
  return sha256(Object.keys(inputs).sort().map((name) => `${name} ${inputs[name]}\n`).join(''));
}

/**
 * The rendered files this provider's build uses: its part of the Packer template (see
 * templateFor) under the name `box.pkr.hcl`, every file that part names under `${path.root}`, and
 * the Vagrantfile the package step puts into the box.
 */
export function usedFiles(rendered: RenderedFile[], provider: Provider): Map<string, string | Buffer> {
  const template = rendered.find((file) => file.path === 'box.pkr.hcl');
  if (!template) throw new Error('the rendered build has no box.pkr.hcl');
  const own = templateFor(String(template.content), provider);
  const named = [...own.matchAll(/\$\{path\.root\}\/([\w./-]+)/g)].map((match) => match[1]!).concat(BOX_VAGRANTFILE);
  const used = new Map<string, string | Buffer>([['box.pkr.hcl', own]]);
  for (const file of rendered) {
    if (file.path !== 'box.pkr.hcl' && named.some((name) => file.path === name || file.path.startsWith(`${name}/`))) used.set(file.path, file.content);
  }
  return new Map([...used].sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * The rendered template as one provider's build reads it: without the other providers' `source`
 * blocks and without the provisioners whose `only` leaves this source out (the layout
 * templates/packer/box.pkr.hcl.hbs renders: top-level blocks close with `}` in column 1,
 * provisioners with `  }`).
 */
export function templateFor(hcl: string, provider: Provider): string {
  const lines = hcl.split('\n');
  const own = sourceRef(provider);
  const kept: string[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const source = /^source "([^"]+)" "[^"]+" \{$/.exec(line);
    const provisioner = /^ {2}provisioner "[^"]+" \{$/.test(line);
    if (source || provisioner) {
      const end = lines.indexOf(source ? '}' : '  }', index);
      if (end < 0) throw new Error(`box.pkr.hcl: the block at line ${index + 1} does not end`);
      const block = lines.slice(index, end + 1);
      const only = block.map((l) => /^\s*only\s*=\s*(\[.*\])\s*$/.exec(l)?.[1]).find(Boolean);
      const skip = source ? source[1] !== PACKER_SOURCES[provider].sourceType : only !== undefined && !(JSON.parse(only) as string[]).includes(own);
      if (!skip) kept.push(...block);
      index = end;
      continue;
    }
    kept.push(line);
  }
  return kept.join('\n');
}

/** The names whose hashes differ between two input sets (added and removed ones too), sorted. */
export function changedInputs(before: Record<string, string>, now: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(now)])].filter((name) => before[name] !== now[name]).sort();
}

/** The hypervisor's version line (the build record's, and an input). */
export async function hypervisorVersion(provider: Provider): Promise<string> {
  const [command, args] =
    provider === 'qemu' ? [toolPath('qemu'), ['--version']] : provider === 'virtualbox' ? [toolPath('vboxmanage'), ['--version']] : [toolPath('vmrun'), []];
  const result = await runCaptured(command, args, { timeoutMs: 10_000 });
  return `${result.stdout}${result.stderr}`.split('\n').find((line) => /\d+\.\d+/.test(line))?.trim() ?? 'unknown';
}
