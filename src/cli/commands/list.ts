import { defineCommand, NO_POSITIONALS } from '../spec.ts';

export const list = defineCommand({
  name: 'list',
  summary: 'the boxes, with their providers and base',
  positionals: NO_POSITIONALS,
  options: {},
  run: async () => {
    const { listBoxes, loadDefinition } = await import('../../definitions/load.ts');
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
    return 0;
  },
});
