// Hostile definition files: each is refused with one DefinitionError line naming the file, the
// place (line:column or byte offset) and what is wrong, without exhausting memory or the stack.
import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DefinitionError } from '../src/definitions/errors.ts';
import { loadDefinition } from '../src/definitions/load.ts';
import { MAX_DEFINITION_BYTES } from '../src/definitions/yaml.ts';
import { boxsmith, REPO_ROOT, tempDir } from './helpers.ts';

/** A copy of definitions/ to add hostile files to. */
function definitionsCopy(): string {
  const dir = tempDir('boxsmith-hostile-');
  cpSync(path.join(REPO_ROOT, 'definitions'), dir, { recursive: true });
  return dir;
}

const laughs = [
  'extends: ubuntu',
  'box_name: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
  ...['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((name, index) => `x${name}: &${name} [${Array(9).fill(`*${'abcdefghi'[index]}`).join(', ')}]`),
  '',
].join('\n');

/** name, content, where the error must point (`:line:col`, `: byte offset N` or both), and what it must say. */
const CORPUS: [string, string | Buffer, RegExp, RegExp][] = [
  ['an alias bomb (billion laughs)', laughs, /^:\d+:\d+$/, /aliases expand to more than 100 copies/],
  ['10,000 nested flow lists', `extends: ubuntu\nbox_name: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`, /^:2:\d+$/, /nested more than 64 levels deep/],
  ['10,000 nested flow mappings', `extends: ubuntu\nhardware: ${'{a: '.repeat(10_000)}1${'}'.repeat(10_000)}\n`, /^:2:\d+$/, /nested more than 64 levels deep/],
  ['10,000 nested block lists on one line', `extends: ubuntu\nbox_name:\n  ${'- '.repeat(10_000)}x\n`, /^:3:\d+$/, /nested more than 64 levels deep/],
  ['1,000 levels of indentation', `extends: ubuntu\n${Array.from({ length: 1000 }, (_, level) => `${' '.repeat(level)}k${level}:`).join('\n')} 1\n`, /^:\d+:\d+$/, /nested more than 64 levels deep/],
  ['a file over the size limit', `extends: ubuntu\n${'# padding\n'.repeat(MAX_DEFINITION_BYTES / 10 + 1)}`, /^$/, /the file is \d+ bytes; a definition is at most 1048576 bytes/],
  ['a !!js/function tag', 'extends: ubuntu\nbox_name: !!js/function "function () { return 1 }"\n', /^:2:11$/, /Unresolved tag: tag:yaml\.org,2002:js\/function/],
  ['a local !foo tag', 'extends: ubuntu\nbox_name: !foo bar\n', /^:2:11$/, /Unresolved tag: !foo/],
  ['a !!binary value', 'extends: ubuntu\nbox_name: !!binary aGVsbG8=\n', /^:2:20$/, /tag !!binary is not allowed/],
  ['a !!set value', 'extends: ubuntu\nproviders: !!set {qemu}\n', /^:2:18$/, /tag !!set is not allowed/],
  ['a !!timestamp value', 'extends: ubuntu\nbox_name: !!timestamp 2001-12-14\n', /^:2:23$/, /tag !!timestamp is not allowed/],
  ['a !!python/object tag', 'extends: ubuntu\nbox_name: !!python/object:os.system x\n', /^:2:11$/, /Unresolved tag/],
  ['a list as a key', 'extends: ubuntu\n? [a, b]\n: x\n', /^:2:3$/, /a key must be a plain name/],
  ['a duplicate key', 'extends: ubuntu\nbox_name: a\nbox_name: b\n', /^:3:1$/, /YAML syntax: Map keys must be unique/],
  ['two documents', 'extends: ubuntu\n---\nbox_name: b\n', /^:2:1$/, /YAML syntax: Source contains multiple documents/],
  ['a NUL byte', Buffer.from('extends: ubuntu\nbox_name: a\0b\n'), /^: byte offset 27$/, /a NUL byte; a definition is UTF-8 text/],
  ['UTF-16 text', Buffer.from('\ufeffextends: ubuntu\n', 'utf16le'), /^: byte offset \d+$/, /a NUL byte/],
  ['bytes that are not UTF-8', Buffer.concat([Buffer.from('extends: ubuntu\nbox_name: "caf'), Buffer.from([0xe9]), Buffer.from('"\n')]), /^:2:15: byte offset 30$/, /not UTF-8 text/],
  ['bytes that are not UTF-8 after a real U+FFFD', Buffer.concat([Buffer.from('extends: ubuntu\n# \ufffd\nbox_name: "'), Buffer.from([0xff]), Buffer.from('"\n')]), /^:3:12: byte offset 33$/, /not UTF-8 text/],
  ['extends that loops through itself', 'extends: hostile\n', /^:1:10$/, /extends: extends loops: hostile\.yaml -> hostile\.yaml/],
  ['extends naming a missing base', 'extends: nope\n', /^:1:10$/, /base "nope" not found/],
  ['extends with an absolute path', 'extends: /etc/passwd\n', /^:1:10$/, /extends: "\/etc\/passwd" is not valid here/],
  ['extends out of the folder', 'extends: ../../etc/passwd\n', /^:1:10$/, /extends: "\.\.\/\.\.\/etc\/passwd" is not valid here/],
];

describe('hostile definition files are refused in one line naming the file and place', () => {
  const dir = definitionsCopy();
  const file = path.join(dir, 'hostile.yaml');
  for (const [name, content, where, what] of CORPUS) {
    it(name, () => {
      writeFileSync(file, content);
      assert.throws(
        () => loadDefinition('hostile', dir),
        (error: unknown) => {
          assert.ok(error instanceof DefinitionError, `a DefinitionError, not ${String(error)}`);
          const [line, ...more] = error.message.split('\n');
          assert.deepEqual(more, [], `one line: ${error.message}`);
          assert.ok(line!.startsWith(file), line);
          assert.match(line!.slice(file.length).replace(/: (?!byte offset).*$/, ''), where, line);
          assert.match(line!, what);
          return true;
        },
      );
    });
  }

  it('an extends loop through two files names both', () => {
    const loopDir = definitionsCopy();
    writeFileSync(path.join(loopDir, 'hostile.yaml'), 'extends: other\n');
    writeFileSync(path.join(loopDir, 'bases', 'other.yaml'), 'abstract: true\nextends: hostile\n');
    assert.throws(() => loadDefinition('hostile', loopDir), /extends loops: hostile\.yaml -> bases\/other\.yaml -> hostile\.yaml/);
  });

  it('through the CLI: an alias bomb and deep nesting are one line each, exit 2, no stack trace', () => {
    for (const content of [laughs, `extends: ubuntu\nbox_name: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`]) {
      const cliDir = definitionsCopy();
      writeFileSync(path.join(cliDir, 'hostile.yaml'), content);
      const result = boxsmith(['render', 'hostile', '--out', path.join(cliDir, 'out'), '--packer-version', '1.11.0'], { BOXSMITH_DEFINITIONS: cliDir });
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /^boxsmith: .*hostile\.yaml:\d+:\d+: (aliases expand|nested more than 64)[^\n]*\n$/);
      assert.doesNotMatch(result.stdout + result.stderr, /^\s+at .*:\d+/m);
    }
  });
});
