// Reads box definitions: YAML files with `extends` inheritance (deep merge, lists replaced),
// checked file by file (types, unknown keys) and then as a whole (required keys, consistency),
// so that every error names the file, line:column and key path that caused it.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import { existingFolder } from '../environment.ts';
import { compressionLevelProblem } from './compression-level.ts';
import { DefinitionError, UnknownBoxError, formatKeyPath, type KeyPath, type Problem } from './errors.ts';
import { parseDefinitionYaml, readDefinitionText } from './yaml.ts';
import { DefinitionFileSchema, DefinitionSchema, type Definition } from './schema.ts';

export const DEFAULT_DEFINITIONS_DIR = fileURLToPath(new URL('../../definitions/', import.meta.url));
const BASES = 'bases';

/** The definitions folder: BOXSMITH_DEFINITIONS, which must exist, or the repository's definitions/. */
export function definitionsDir(): string {
  return process.env.BOXSMITH_DEFINITIONS ? existingFolder('BOXSMITH_DEFINITIONS', path.resolve(process.env.BOXSMITH_DEFINITIONS)) : DEFAULT_DEFINITIONS_DIR;
}

/** A definition file as parsed, with what is needed to point back into it. */
interface ParsedFile {
  file: string;
  data: Record<string, unknown>;
  doc: Document.Parsed;
  lines: LineCounter;
}

export interface LoadedDefinition {
  box: string;
  definition: Definition;
  /** The files the definition was merged from, the box file first, its bases after it. */
  files: string[];
}

// verbose: errors carry the offending value and schema, which the messages quote.
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
const validateFile = ajv.compile(DefinitionFileSchema);
const validateDefinition = ajv.compile(DefinitionSchema);

/** The buildable boxes: every definition file outside bases/ that is not abstract. */
export function listBoxes(dir = definitionsDir()): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yaml'))
    .map((name) => name.slice(0, -'.yaml'.length))
    .filter((box) => parseFile(path.join(dir, `${box}.yaml`)).data.abstract !== true)
    .sort();
}

export function loadDefinition(box: string, dir = definitionsDir()): LoadedDefinition {
  const boxFile = path.join(dir, `${box}.yaml`);
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(box) || !existsSync(boxFile)) {
    throw new UnknownBoxError(box, listBoxes(dir), dir);
  }
  const chain = resolveChain(boxFile, dir);
  const leaf = chain[0]!;
  if (leaf.data.abstract === true) {
    throw new DefinitionError([{ file: leaf.file, message: `"${box}" is abstract: it is a base for boxes, not a box` }]);
  }

  // Merge from the most general base to the box file; remember which file set each key last.
  let merged: Record<string, unknown> = {};
  const setBy = new Map<string, ParsedFile>();
  for (const parsed of [...chain].reverse()) {
    const { extends: _extends, abstract: _abstract, ...settings } = parsed.data;
    merged = deepMerge(merged, settings);
    for (const keyPath of leafPaths(settings)) setBy.set(formatKeyPath(keyPath), parsed);
  }

  if (!validateDefinition(merged)) {
    const names = chain.map((p) => path.relative(dir, p.file)).join(' -> ');
    throw new DefinitionError(
      (validateDefinition.errors ?? []).map((error) => {
        const keyPath = errorKeyPath(error);
        const origin = setBy.get(formatKeyPath(keyPath)) ?? findOwner(chain, keyPath) ?? leaf;
        const located = locate(origin, keyPath, pointsAtKey(error));
        const message =
          error.keyword === 'required'
            ? `is required, but no file of ${names} sets it`
            : describeError(error);
        return { file: origin.file, ...located, keyPath: formatKeyPath(keyPath), message };
      }),
    );
  }
  const definition = merged as Definition;
  const problems = checkConsistency(definition).map(({ keyPath, message }) => {
    const origin = setBy.get(formatKeyPath(keyPath)) ?? findOwner(chain, keyPath) ?? leaf;
    return { file: origin.file, ...locate(origin, keyPath), keyPath: formatKeyPath(keyPath), message };
  });
  if (problems.length) throw new DefinitionError(problems);
  return { box, definition, files: chain.map((p) => p.file) };
}

/** The box file and its bases, box first; a missing base or a loop is an error at its `extends`. */
function resolveChain(boxFile: string, dir: string): ParsedFile[] {
  const chain: ParsedFile[] = [];
  let current: ParsedFile | undefined = parseFile(boxFile);
  while (current) {
    if (chain.some((p) => p.file === current!.file)) {
      const loop = [...chain, current].map((p) => path.relative(dir, p.file)).join(' -> ');
      throw new DefinitionError([{ file: current.file, ...locate(current, ['extends']), keyPath: 'extends', message: `extends loops: ${loop}` }]);
    }
    chain.push(current);
    const base = current.data.extends;
    if (typeof base !== 'string') break;
    const candidates = [path.join(dir, BASES, `${base}.yaml`), path.join(dir, `${base}.yaml`)];
    const baseFile = candidates.find((candidate) => existsSync(candidate));
    if (!baseFile) {
      throw new DefinitionError([
        {
          file: current.file,
          ...locate(current, ['extends']),
          keyPath: 'extends',
          message: `base "${base}" not found (looked for ${candidates.map((c) => path.relative(dir, c)).join(' and ')})`,
        },
      ]);
    }
    current = parseFile(baseFile);
  }
  return chain;
}

/** Parsed files by path, reused while their text is unchanged (list and load read each file). */
const parsedCache = new Map<string, { text: string; parsed: ParsedFile }>();

/** Parses one YAML file and checks it against the per-file schema. */
function parseFile(file: string): ParsedFile {
  const text = readDefinitionText(file);
  const cached = parsedCache.get(file);
  if (cached && cached.text === text) return cached.parsed;

  const { doc, lines, data } = parseDefinitionYaml(file, text);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new DefinitionError([{ file, line: 1, column: 1, message: 'a definition must be a YAML mapping of settings' }]);
  }
  const parsed: ParsedFile = { file, data: data as Record<string, unknown>, doc, lines };
  if (!validateFile(parsed.data)) {
    throw new DefinitionError(
      (validateFile.errors ?? []).map((error) => {
        const keyPath = errorKeyPath(error);
        return { file, ...locate(parsed, keyPath, pointsAtKey(error)), keyPath: formatKeyPath(keyPath), message: describeError(error) };
      }),
    );
  }
  parsedCache.set(file, { text, parsed });
  return parsed;
}

/** The key path an Ajv error is about: for an unknown or missing key, the key itself. */
function errorKeyPath(error: ErrorObject): KeyPath {
  const keyPath: KeyPath = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  if (error.keyword === 'additionalProperties') keyPath.push(String(error.params.additionalProperty));
  if (error.keyword === 'required') keyPath.push(String(error.params.missingProperty));
  return keyPath;
}

/** An unknown key is shown at the key, a bad value at the value. */
function pointsAtKey(error: ErrorObject): 'key' | 'value' {
  return error.keyword === 'additionalProperties' ? 'key' : 'value';
}

function describeError(error: ErrorObject): string {
  switch (error.keyword) {
    case 'additionalProperties':
      return `unknown key (allowed here: ${allowedKeys(error).join(', ')})`;
    case 'enum':
      return `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, not ${JSON.stringify(error.data)}`;
    case 'type':
      return `must be ${error.params.type === 'integer' ? 'an integer' : `a ${error.params.type}`}, not ${describeValue(error.data)}`;
    case 'pattern': {
      // A secret (writeOnly) is not echoed into a terminal or a CI log.
      const shown = error.parentSchema?.writeOnly ? 'this value' : JSON.stringify(error.data);
      return `${shown} is not valid here${error.parentSchema?.description ? ` (${error.parentSchema.description})` : ''}`;
    }
    default:
      return error.message ?? error.keyword;
  }
}

function allowedKeys(error: ErrorObject): string[] {
  const properties = (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return properties ? Object.keys(properties) : [];
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** line:column of a key path in a file: of the value, or (`at: 'key'`) of the key itself. */
function locate(parsed: ParsedFile, keyPath: KeyPath, at: 'key' | 'value' = 'value'): { line?: number; column?: number } {
  let node: unknown = parsed.doc.contents;
  let offset: number | undefined = rangeStart(node);
  for (const [index, key] of keyPath.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && item.key.value === key);
      if (!pair) break;
      const last = index === keyPath.length - 1;
      offset = (last && at === 'key' ? undefined : rangeStart(pair.value)) ?? rangeStart(pair.key);
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key];
      if (item === undefined) break;
      offset = rangeStart(item);
      node = item;
    } else {
      break;
    }
  }
  if (offset === undefined) return {};
  const { line, col } = parsed.lines.linePos(offset);
  return { line, column: col };
}

function rangeStart(node: unknown): number | undefined {
  return node && typeof node === 'object' && 'range' in node ? (node as Node).range?.[0] : undefined;
}

/** The most specific file that sets the longest existing prefix of a key path. */
function findOwner(chain: ParsedFile[], keyPath: KeyPath): ParsedFile | undefined {
  for (let length = keyPath.length; length > 0; length--) {
    const prefix = keyPath.slice(0, length);
    const owner = chain.find((parsed) => parsed.doc.hasIn(prefix));
    if (owner) return owner;
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Mappings merge key by key; lists and scalars from the override replace the base's. */
export function deepMerge(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const existing = result[key];
    result[key] = isPlainObject(existing) && isPlainObject(value) ? deepMerge(existing, value) : value;
  }
  return result;
}

/** Every key path that holds a scalar or a list (lists are replaced whole, so they are leaves). */
function leafPaths(value: Record<string, unknown>, prefix: KeyPath = []): KeyPath[] {
  return Object.entries(value).flatMap(([key, child]) =>
    isPlainObject(child) ? [[...prefix, key], ...leafPaths(child, [...prefix, key])] : [[...prefix, key]],
  );
}

/** Rules that span several keys, which a schema of independent keys cannot say. */
export function checkConsistency(definition: Definition): { keyPath: KeyPath; message: string }[] {
  const problems: { keyPath: KeyPath; message: string }[] = [];
  const { base } = definition;
  if (base.kind === 'iso') {
    if (!base.iso) problems.push({ keyPath: ['base', 'kind'], message: 'an iso base needs base.iso (file, urls, checksum)' });
    if (!base.installer) problems.push({ keyPath: ['base', 'kind'], message: 'an iso base needs base.installer (boot command and preseed)' });
    if (base.debootstrap) problems.push({ keyPath: ['base', 'debootstrap'], message: 'only a debootstrap base takes base.debootstrap' });
  } else {
    if (!base.debootstrap) problems.push({ keyPath: ['base', 'kind'], message: 'a debootstrap base needs base.debootstrap' });
    for (const key of ['iso', 'installer'] as const) {
      if (base[key]) problems.push({ keyPath: ['base', key], message: `only an iso base takes base.${key}` });
    }
    definition.providers.forEach((provider, index) => {
      if (provider !== 'qemu') {
        problems.push({
          keyPath: ['providers', index],
          message: `a debootstrap base image is booted by Packer's qemu disk_image source only; ${provider} needs an iso base`,
        });
      }
    });
  }
  const { chef } = definition;
  if (chef.install && chef.source === 'vendor-deb') {
    for (const key of ['version', 'url', 'sha256'] as const) {
      if (!chef[key]) problems.push({ keyPath: ['chef', 'source'], message: `a vendor-deb Chef needs chef.${key}` });
    }
  }
  const { compression, compression_level: level } = definition.box;
  const levelProblem = level === undefined ? undefined : compressionLevelProblem(compression, level);
  if (levelProblem) problems.push({ keyPath: ['box', 'compression_level'], message: levelProblem });
  problems.push(...checkDockerSource(definition.docker));
  return problems;
}

/** The file name of a docker.static .tgz, as its URL ends. */
export function dockerStaticFile(spec: { url: string }): string {
  return spec.url.replace(/[?#].*$/, '').split('/').pop() ?? '';
}

/** docker.source and the settings each source takes (only its own: a leftover would be ignored). */
function checkDockerSource(docker: Definition['docker']): { keyPath: KeyPath; message: string }[] {
  const problems: { keyPath: KeyPath; message: string }[] = [];
  const { source } = docker;
  if (source === 'repository' && !docker.repository) {
    problems.push({ keyPath: ['docker', 'source'], message: 'a repository Docker needs docker.repository (url, suite, component, key_url, key_fingerprint)' });
  }
  if (source === 'static' && !docker.static) {
    problems.push({ keyPath: ['docker', 'source'], message: 'a static Docker needs docker.static (version, url, sha256)' });
  }
  if (docker.repository && source !== 'repository') {
    problems.push({ keyPath: ['docker', 'repository'], message: `only docker.source: repository takes docker.repository (docker.source is ${source})` });
  }
  if (docker.static && source !== 'static') {
    problems.push({ keyPath: ['docker', 'static'], message: `only docker.source: static takes docker.static (docker.source is ${source})` });
  }
  if (docker.static && source === 'static') {
    const expected = `docker-${docker.static.version}.tgz`;
    if (dockerStaticFile(docker.static) !== expected) {
      problems.push({
        keyPath: ['docker', 'static', 'url'],
        message: `must name ${expected}, the file of docker.static.version (a new version needs its url and sha256 too)`,
      });
    }
  }
  if (docker.install && source !== 'static' && docker.packages.length === 0) {
    problems.push({ keyPath: ['docker', 'packages'], message: 'Docker is to be installed, so name its packages' });
  }
  return problems;
}
