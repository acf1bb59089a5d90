// Reads the YAML of one definition file, refusing what a definition never needs and what a hostile
// file could use against boxsmith: huge files, bytes that are not UTF-8 text, nesting deep enough
// to exhaust the stack, aliases that expand without end, tags outside the YAML core schema,
// duplicate keys and several documents. Each refusal names the file and place, in one line.
import { readFileSync, statSync } from 'node:fs';
import { isAlias, isNode, isScalar, LineCounter, Parser, parseDocument, visit, type CST, type Document } from 'yaml';
import { DefinitionError } from './errors.ts';

/** Definitions are a few kilobytes; a megabyte is not a definition. */
export const MAX_DEFINITION_BYTES = 1024 * 1024;
/** Definitions nest a few levels; this leaves room and keeps every recursive walk shallow. */
export const MAX_NESTING_DEPTH = 64;
/** Copies of anchored values that aliases may make, in all. */
export const MAX_ALIAS_COUNT = 100;

const REPLACEMENT_CHARACTER = Buffer.from('\uFFFD');

/** The tags of plain values (YAML 1.2 core schema), written out or implied. */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((name) => `tag:yaml.org,2002:${name}`));

export interface DefinitionYaml {
  doc: Document.Parsed;
  lines: LineCounter;
  data: unknown;
}

function refuse(file: string, message: string, position?: { line: number; col: number }): never {
  throw new DefinitionError([{ file, ...(position ? { line: position.line, column: position.col } : {}), message }]);
}

/** line and column (from 1) of a character offset. */
function positionOf(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, col: offset - lineStart + 1 };
}

/** The file's text, if it is a small UTF-8 text file. */
export function readDefinitionText(file: string): string {
  const size = statSync(file).size;
  if (size > MAX_DEFINITION_BYTES) refuse(file, `the file is ${size} bytes; a definition is at most ${MAX_DEFINITION_BYTES} bytes`);
  const bytes = readFileSync(file);
  const nul = bytes.indexOf(0);
  if (nul >= 0) refuse(file, `byte offset ${nul}: a NUL byte; a definition is UTF-8 text`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const lenient = new TextDecoder('utf-8').decode(bytes);
    // Up to the first bad sequence the text re-encodes to the same bytes, so its U+FFFD (one not
    // written in the file as EF BF BD) is at the byte offset of the bad bytes.
    let index = lenient.indexOf('\uFFFD');
    let offset = 0;
    while (index >= 0) {
      offset = Buffer.byteLength(lenient.slice(0, index));
      if (!bytes.subarray(offset, offset + 3).equals(REPLACEMENT_CHARACTER)) break;
      index = lenient.indexOf('\uFFFD', index + 1);
    }
    return refuse(file, `byte offset ${offset}: not UTF-8 text (save the file as UTF-8)`, index >= 0 ? positionOf(lenient, index) : undefined);
  }
}

/** Refuses nesting deeper than MAX_NESTING_DEPTH, walking the parser's tokens without recursion. */
function checkNesting(file: string, text: string): void {
  const pending: { token: CST.Token | undefined; depth: number }[] = [];
  for (const token of new Parser().parse(text)) pending.push({ token, depth: 0 });
  while (pending.length) {
    const { token, depth } = pending.pop()!;
    if (!token) continue;
    switch (token.type) {
      case 'document':
        pending.push({ token: token.value, depth });
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection': {
        if (depth + 1 > MAX_NESTING_DEPTH) refuse(file, `nested more than ${MAX_NESTING_DEPTH} levels deep; a definition needs a few`, positionOf(text, token.offset));
        for (const item of token.items) {
          if ('key' in item) pending.push({ token: item.key ?? undefined, depth: depth + 1 });
          pending.push({ token: item.value, depth: depth + 1 });
        }
        break;
      }
      default:
        break;
    }
  }
}

/** Parses the text of a definition file (from readDefinitionText). */
export function parseDefinitionYaml(file: string, text: string): DefinitionYaml {
  checkNesting(file, text);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true, schema: 'core', version: '1.2' });
  // A warning (an unresolved tag) means the file does not say what it seems to: refused as well.
  const problems = [...doc.errors.map((error) => ({ error, kind: 'YAML syntax' })), ...doc.warnings.map((error) => ({ error, kind: 'YAML' }))];
  if (problems.length) {
    throw new DefinitionError(
      problems.map(({ error, kind }) => ({
        file,
        line: error.linePos?.[0].line,
        column: error.linePos?.[0].col,
        // prettyErrors appends the position and a code excerpt; the position is given separately.
        message: `${kind}: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
    );
  }
  let firstAlias: number | undefined;
  visit(doc, {
    Pair: (_key, pair) => {
      if (isNode(pair.key) && !isScalar(pair.key)) refuse(file, 'a key must be a plain name, not a list or mapping', lines.linePos(pair.key.range?.[0] ?? 0));
    },
    Node: (_key, node) => {
      const offset = node.range?.[0] ?? 0;
      if (isAlias(node)) firstAlias ??= offset;
      else if (node.tag && !CORE_TAGS.has(node.tag)) refuse(file, `tag ${node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed: a definition holds plain strings, numbers, booleans, lists and mappings`, lines.linePos(offset));
    },
  });
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // The yaml library refuses alias expansion past maxAliasCount with a ReferenceError.
    if (error instanceof ReferenceError && firstAlias !== undefined) refuse(file, `aliases expand to more than ${MAX_ALIAS_COUNT} copies (a resource-exhaustion document)`, lines.linePos(firstAlias));
    throw error;
  }
  return { doc, lines, data };
}
