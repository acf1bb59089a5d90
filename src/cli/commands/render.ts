import path from 'node:path';
import { checkToolOverrides, writableFolder } from '../../environment.ts';
import { parsePackerVersion } from '../../packer/version.ts';
import { defineCommand, flag, value } from '../spec.ts';
import { nonEmpty } from '../values.ts';

export const render = defineCommand({
  name: 'render',
  summary: 'write a self-contained Packer build directory (default rendered/<box>/) that `packer validate DIR` accepts',
  positionals: { synopsis: '<box>', min: 1, max: 1, what: 'one box name' },
  options: {
    out: value('DIR', 'the folder to write (default: rendered/<box>/)', nonEmpty),
    'packer-version': value('V', 'render for this Packer version (e.g. 1.6.6) instead of the installed one', (text) => (parsePackerVersion(text), text)),
    force: flag('replace a folder boxsmith did not create; never a .git folder, the project, / or home'),
  },
  run: async ({ options, positionals: [box] }) => {
    if (!options['packer-version']) checkToolOverrides(['packer']);
    const { loadDefinition } = await import('../../definitions/load.ts');
    loadDefinition(box!); // a wrong box or definition is said before Packer is asked its version
    const { REPO_ROOT, renderToUserDirectory } = await import('../../render/render.ts');
    const { packerVersionFor } = await import('../../run-settings.ts');
    const packer = packerVersionFor(options['packer-version']);
    const outDir = writableFolder('--out', path.resolve(options.out ?? path.join(REPO_ROOT, 'rendered', box!)));
    // Replaces only a folder boxsmith wrote (or, with --force, one the user asked it to replace).
    const { files } = renderToUserDirectory(box!, outDir, { packer, force: options.force ?? false });
    console.log(`rendered ${box} for Packer ${packer.version} into ${path.relative(process.cwd(), outDir) || '.'} (${files.length} files)`);
    return 0;
  },
});
