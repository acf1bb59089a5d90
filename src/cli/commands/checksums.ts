import { defineCommand, flag } from '../spec.ts';

export const checksums = defineCommand({
  name: 'checksums',
  summary: "compare pinned checksums (ISOs, Docker's static .tgz) with what their sources publish now",
  positionals: { synopsis: '[box...]', min: 0, max: Infinity, what: 'box names' },
  options: {
    refresh: flag('rewrite the pin in the definition where they differ'),
  },
  run: async ({ options, positionals }) => {
    const { checkChecksums } = await import('../../checksums.ts');
    return checkChecksums(positionals, options.refresh);
  },
});
