// Renders a definition into a self-contained build directory: the Packer template, the preseed for
// installer boxes, the guest scripts, Vagrant's insecure key pair and the box's Vagrantfile.
// Everything is rendered in memory first and written by one rename, so bad input or a broken
// template never touches an existing build directory, and rendering twice gives the same bytes.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { DefinitionError } from '../definitions/errors.ts';
import { loadDefinition, type LoadedDefinition } from '../definitions/load.ts';
import { FOLDER_MARKER, replaceableFolder } from '../files/owned-folder.ts';
import type { PackerVersion } from '../packer/version.ts';
import { BOX_VAGRANTFILE, templateContext, type TemplateContext } from './context.ts';
import { alignHclAttributes, hclValue } from './hcl.ts';
import { REPO_ROOT } from '../repo-root.ts';
import { preseedValue } from './preseed.ts';

export { REPO_ROOT };

export interface RenderedFile {
  /** Path inside the build directory. */
  path: string;
  content: string | Buffer;
  mode: number;
}

export interface RenderOptions {
  packer: PackerVersion;
  /** Where templates/, scripts/ and keys/ are; the repository by default. */
  root?: string;
  /** Definitions directory; BOXSMITH_DEFINITIONS or the repository's by default. */
  definitionsDir?: string;
}

/** The rendered files of a box, in memory. Throws DefinitionError naming the file and place. */
export function renderBox(box: string, options: RenderOptions): { loaded: LoadedDefinition; files: RenderedFile[] } {
  const root = options.root ?? REPO_ROOT;
  const loaded = options.definitionsDir ? loadDefinition(box, options.definitionsDir) : loadDefinition(box);
  const context = templateContext(loaded, options.packer, root);
  const template = (name: string) => renderTemplate(path.join(root, 'templates', name), context);

  const files: RenderedFile[] = [
    { path: 'box.pkr.hcl', content: alignHclAttributes(template('packer/box.pkr.hcl.hbs')), mode: 0o644 },
    { path: BOX_VAGRANTFILE, content: template('Vagrantfile.box.hbs'), mode: 0o644 },
    { path: 'keys/vagrant', content: readFileSync(path.join(root, 'keys/vagrant')), mode: 0o600 },
    { path: 'keys/vagrant.pub', content: readFileSync(path.join(root, 'keys/vagrant.pub')), mode: 0o644 },
    // The passwords are in these: readable by the build's user only.
    { path: 'keys/sudo-password', content: `${loaded.definition.vagrant_user.password}\n`, mode: 0o600 },
    { path: 'definition.json', content: `${JSON.stringify(loaded.definition, null, 2)}\n`, mode: 0o600 },
  ];
  if (loaded.definition.base.kind === 'iso') {
    files.push({ path: 'http/preseed.cfg', content: template('http/preseed.cfg.hbs'), mode: 0o600 });
  }
  const scripts = new Set(context.provisioners.flatMap((p) => [...p.scripts.matchAll(/scripts\/([\w.-]+\.sh)/g)].map((m) => m[1]!)));
  for (const script of [...scripts].sort()) {
    files.push({ path: `scripts/${script}`, content: readFileSync(path.join(root, 'scripts', script)), mode: 0o755 });
  }
  return { loaded, files: files.sort((a, b) => a.path.localeCompare(b.path)) };
}

/** Renders a box and writes it as `outDir`; on any error `outDir` is left as it was. */
export function renderToDirectory(box: string, outDir: string, options: RenderOptions): { loaded: LoadedDefinition; files: RenderedFile[] } {
  const rendered = renderBox(box, options);
  writeBuildDirectory(outDir, rendered.files);
  return rendered;
}

/**
 * `render --out DIR`: the folder a user named is replaced only when it is boxsmith's render
 * folder (or new, or empty; or foreign with `force`), checked before anything is written; the
 * result carries the marker that makes it boxsmith's.
 */
export function renderToUserDirectory(box: string, outDir: string, options: RenderOptions & { force?: boolean }): { loaded: LoadedDefinition; files: RenderedFile[] } {
  const dir = path.resolve(outDir);
  // rendered/<box> is the project's own place for renders.
  const byDesign = path.dirname(dir) === path.join(REPO_ROOT, 'rendered');
  const marker = replaceableFolder({ dir, kind: 'render', namedBy: '--out', byDesign, ...(options.force ? { force: true } : {}) });
  const rendered = renderBox(box, options);
  writeBuildDirectory(dir, [...rendered.files, { path: FOLDER_MARKER, content: marker, mode: 0o644 }]);
  return rendered;
}

/** Writes rendered files as `outDir`, replacing what was there only once all are written. */
export function writeBuildDirectory(outDir: string, files: RenderedFile[]): void {
  const target = path.resolve(outDir);
  mkdirSync(path.dirname(target), { recursive: true });
  // Fresh names (mkdtemp) beside the target: nothing of the user's in its parent is ever touched.
  const staging = mkdtempSync(`${target}.rendering-${process.pid}-`);
  let previous: string | undefined;
  try {
    for (const file of files) {
      const destination = path.join(staging, file.path);
      mkdirSync(path.dirname(destination), { recursive: true });
      writeFileSync(destination, file.content, { mode: file.mode });
    }
    if (existsSync(target)) {
      // rename(2) replaces the empty folder mkdtemp made, so the old one moves aside in one step.
      previous = mkdtempSync(`${target}.previous-${process.pid}-`);
      renameSync(target, previous);
    }
    renameSync(staging, target);
    if (previous) rmSync(previous, { recursive: true, force: true });
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    // The old folder goes back; an aside folder that stayed empty (or the replaced one) goes.
    if (previous && !existsSync(target)) renameSync(previous, target);
    else if (previous) rmSync(previous, { recursive: true, force: true });
    throw error;
  }
}

const handlebars = Handlebars.create();
handlebars.registerHelper('hcl', (value: unknown) => hclValue(value));
handlebars.registerHelper('preseed', (value: unknown) => preseedValue(String(value)));
handlebars.registerHelper('join', (values: unknown, separator: unknown) => {
  if (!Array.isArray(values)) throw new Error('join takes a list');
  return values.join(typeof separator === 'string' ? separator : ' ');
});
/** `{{ .Name }}`: a Go template expression for Packer to fill in, written from Handlebars. */
handlebars.registerHelper('braces', (expression: unknown) => `{{ ${String(expression)} }}`);

const compiled = new Map<string, { source: string; render: Handlebars.TemplateDelegate }>();

/**
 * Renders a Handlebars template in strict mode: a variable the context lacks is an error naming
 * the template file, line and column, never an empty string in a build file.
 */
export function renderTemplate(file: string, context: TemplateContext | Record<string, unknown>): string {
  const source = readFileSync(file, 'utf8');
  let entry = compiled.get(file);
  if (!entry || entry.source !== source) {
    entry = { source, render: handlebars.compile(source, { strict: true, noEscape: true }) };
    compiled.set(file, entry);
  }
  try {
    return entry.render(context);
  } catch (error) {
    const { message, lineNumber, column } = error as Error & { lineNumber?: number; column?: number };
    const missing = /^"([^"]+)" not defined in/.exec(message);
    throw new DefinitionError([
      {
        file,
        ...(lineNumber ? { line: lineNumber, column: (column ?? 0) + 1 } : {}),
        message: missing
          ? `template variable "${missing[1]}" is not defined for this definition`
          : `template error: ${message.split('\n')[0]}`,
      },
    ]);
  }
}
