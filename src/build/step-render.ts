// Step render: the definition rendered into the build's template folder; its cleanup removes the
// build's work folder (Packer's VM disks among it).
import { rmSync } from 'node:fs';
import path from 'node:path';
import { renderToDirectory } from '../render/render.ts';
import type { BuildState } from './build-state.ts';
import { boxInputs } from './box-inputs.ts';

export async function renderStep(state: BuildState): Promise<void> {
  // Packer's VM disks live here: if boxsmith is killed outright, its watchdog removes them.
  if (!state.env.keepWork) state.env.watchdog?.register({ type: 'scratch', path: state.workDir });
  const { files } = renderToDirectory(state.target.loaded.box, state.templateDir, { packer: state.env.packer, definitionsDir: path.dirname(state.target.loaded.files[0]!) });
  // Once per build, from the files just rendered; the record carries them.
  state.inputs = state.target.inputs ?? (await boxInputs(state.target.loaded, state.target.provider, { packer: state.env.packer, rendered: files }));
  for (const [name, why] of Object.entries(state.inputs.unknown)) state.env.onLine?.(`input ${name} unknown (${why}): the build record gets no input hash`, state.target);
}

export async function removeWorkDir(state: BuildState): Promise<void> {
  if (state.env.keepWork) return;
  rmSync(state.workDir, { recursive: true, force: true });
  state.env.watchdog?.unregister({ type: 'scratch', path: state.workDir });
}
