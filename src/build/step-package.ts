// Step package: the box Packer made, read once (checked to be a Vagrant box for this provider with
// its files, and hashed) and staged beside its final folder; its cleanup removes a box that did
// not make it into place.
import { existsSync, statSync } from 'node:fs';
import type { StepContext } from '../exec/steps.ts';
import { boxProvider } from '../render/context.ts';
import { inspectBox } from '../store/box-file.ts';
import { createStaging, removeStaging as removeStagingFolder, stageBox } from '../store/staging.ts';
import { boxDirectory, type BuildState } from './build-state.ts';

/** Verifies the box Packer made and stages it, with its checksum, beside its final folder. */
export async function packageStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { target, env } = state;
  const artifact = state.artifact!;
  if (!existsSync(artifact) || statSync(artifact).size === 0) throw new Error(`Packer reported success but made no box at ${artifact}`);
  const provider = boxProvider(target.provider);
  // Made first, so the watchdog knows it for the whole step.
  state.staging = createStaging(boxDirectory(env.boxesDir, target, env.version), provider, env.runId);
  if (!env.keepWork) env.watchdog?.register({ type: 'scratch', path: state.staging.dir });
  const { sha256 } = await inspectBox(artifact, provider, { signal: ctx.signal });
  state.stagedBox = await stageBox(state.staging, artifact, sha256, ctx.signal);
  state.sha256 = sha256;
}

/** A box that did not make it into place goes (kept with --keep-work, to look at). */
export async function removeStaging(state: BuildState): Promise<void> {
  const { staging } = state;
  if (!staging || state.env.keepWork) return;
  removeStagingFolder(staging);
  state.env.watchdog?.unregister({ type: 'scratch', path: staging.dir });
}

/** A step whose full disk is said in one line naming the folder, not as a bare system call error. */
export function sayingDiskFull(step: (state: BuildState, ctx: StepContext) => Promise<void>) {
  return async (state: BuildState, ctx: StepContext): Promise<void> => {
    try {
      await step(state, ctx);
    } catch (error) {
      const failure = error as NodeJS.ErrnoException & { dest?: string };
      if (failure.code !== 'ENOSPC') throw error;
      const file = failure.dest ?? failure.path;
      throw new Error(
        `no space left on the disk holding ${state.env.boxesDir} (ENOSPC)${file ? ` while writing ${file}` : ''}; ` +
          'nothing was put in place: free space there and build again',
      );
    }
  };
}


