// Step package: the box Packer made, read once (checked to be a Vagrant box for this provider with
// its files, and hashed) and staged beside its final folder with the package manifest the guest
// gave; its cleanup removes a box that did not make it into place.
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { StepContext } from '../exec/steps.ts';
import { boxProvider, GUEST_MANIFEST } from '../render/context.ts';
import { inspectBox } from '../store/box-file.ts';
import { readManifest } from '../store/manifest.ts';
import { createStaging, removeStaging as removeStagingFolder, stageBox, stagedFiles } from '../store/staging.ts';
import { boxDirectory, type BuildState } from './build-state.ts';

/** Verifies the box Packer made and stages it, with its checksum, beside its final folder. */
export async function packageStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { target, env } = state;
  const artifact = state.artifact!;
  if (!existsSync(artifact) || statSync(artifact).size === 0) throw new Error(`Packer reported success but made no box at ${artifact}`);
  const provider = boxProvider(target.provider);
  const manifestDir = path.join(state.packerWorkDir, 'manifest');
  const guest = readGuestManifest(manifestDir);
  // Made first, so the watchdog knows it for the whole step.
  state.staging = createStaging(boxDirectory(env.boxesDir, target, env.version), provider, env.runId);
  if (!env.keepWork) env.watchdog?.register({ type: 'scratch', path: state.staging.dir });
  const { sha256 } = await inspectBox(artifact, provider, { signal: ctx.signal });
  state.stagedBox = await stageBox(state.staging, artifact, sha256, ctx.signal);
  copyFileSync(path.join(manifestDir, 'packages.tsv'), stagedFiles(state.staging).packageManifest);
  state.sha256 = sha256;
  state.guest = guest;
}

/** What scripts/manifest.sh wrote and Packer downloaded: the packages (checked line by line), the kernel, Docker's version. */
function readGuestManifest(dir: string): NonNullable<BuildState['guest']> {
  const missing = GUEST_MANIFEST.files.filter((file) => !existsSync(path.join(dir, file)));
  if (missing.length) throw new Error(`Packer reported success but brought no ${missing.join(', ')} from the guest into ${dir} (scripts/manifest.sh)`);
  const line = (file: string) => readFileSync(path.join(dir, file), 'utf8').trim();
  const kernel = line('kernel');
  if (!/^\S+$/.test(kernel)) throw new Error(`${path.join(dir, 'kernel')}: expected the kernel release (uname -r), found ${JSON.stringify(kernel.slice(0, 80))}`);
  const docker = line('docker');
  const packages = readManifest(path.join(dir, 'packages.tsv')).length;
  if (packages === 0) throw new Error(`${path.join(dir, 'packages.tsv')} lists no package`);
  return { kernel, ...(docker ? { docker } : {}), packages };
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


