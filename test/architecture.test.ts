// The module graph of src/ has no cycles: neither between files nor between folders (a folder
// importing another that imports it back), so each concern can be read, tested and replaced alone.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { REPO_ROOT } from './helpers.ts';

const SRC = path.join(REPO_ROOT, 'src');

/** Every .ts file below src/ with the src/ files it imports (static and dynamic imports, `export ... from`). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = (readdirSync(SRC, { recursive: true }) as string[]).filter((name) => name.endsWith('.ts')).map((name) => path.join(SRC, name));
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+\.ts)'/g)].map((m) => path.resolve(path.dirname(file), m[1]!));
    graph.set(file, [...new Set(targets)].filter((target) => target.startsWith(SRC)));
  }
  return graph;
}

/** One cycle of the graph, as the list of its nodes, or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

const relative = (nodes: string[]) => nodes.map((node) => path.relative(REPO_ROOT, node)).join(' -> ');

it('no file in src/ imports itself back through others', () => {
  const cycle = findCycle(importGraph());
  assert.equal(cycle && relative(cycle), undefined);
});

it('no folder of src/ imports another that imports it back (src/ itself, with the entry point, aside)', () => {
  const folders = new Map<string, string[]>();
  for (const [file, targets] of importGraph()) {
    const from = path.dirname(file);
    if (from === SRC) continue;
    const edges = folders.get(from) ?? [];
    for (const target of targets) if (path.dirname(target) !== from && path.dirname(target) !== SRC) edges.push(path.dirname(target));
    folders.set(from, [...new Set(edges)]);
  }
  const cycle = findCycle(folders);
  assert.equal(cycle && relative(cycle), undefined);
});

it('the check finds a cycle where there is one', () => {
  assert.deepEqual(findCycle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]])), ['a', 'b', 'c', 'a']);
  assert.equal(findCycle(new Map([['a', ['b']], ['b', []]])), undefined);
});
