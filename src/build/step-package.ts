// Step package: the box Packer made, checked (a Vagrant box for this provider), hashed and staged
// beside its final folder with the package manifest the guest gave; its cleanup removes a box that
// did not make it into place.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StepContext } from '../exec/steps.ts';
import { boxProvider, GUEST_MANIFEST } from '../render/context.ts';
import { manifestFileName, readManifest } from '../store/manifest.ts';
import { hashFile } from '../inputs/checksum.ts';
import { boxDirectory, stepRunner, type BuildState } from './build-state.ts';

/** Verifies the box Packer made and stages it, with its checksum, beside its final folder. */
export async function packageStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { target, env } = state;
  const artifact = state.artifact!;
  if (!existsSync(artifact) || statSync(artifact).size === 0) throw new Error(`Packer reported success but made no box at ${artifact}`);
  const provider = boxProvider(target.provider);
  const listing = await stepRunner(state, 'package', ctx).run('tar', ['-xzOf', artifact, 'metadata.json'], { capture: true });
  let metadata: { provider?: string };
  try {
    metadata = JSON.parse(listing.stdout) as { provider?: string };
  } catch {
    throw new Error(`${artifact} has no readable metadata.json: it is not a Vagrant box`);
  }
  if (metadata.provider !== provider) throw new Error(`${artifact} is a box for "${metadata.provider}", not ${provider}`);
  const manifestDir = path.join(state.packerWorkDir, 'manifest');
  const guest = readGuestManifest(manifestDir);

  const { hex: sha256 } = await hashFile(artifact, 'sha256');
  const dir = boxDirectory(env.boxesDir, target, env.version);
  state.stagingDir = path.join(dir, `.staging-${provider}-${env.runId}`);
  state.createdBoxFolder = mkdirSync(state.stagingDir, { recursive: true });
  if (!env.keepWork) env.watchdog?.register({ type: 'scratch', path: state.stagingDir });
  state.stagedBox = path.join(state.stagingDir, `${provider}.box`);
  moveFile(artifact, state.stagedBox);
  if ((await hashFile(state.stagedBox, 'sha256')).hex !== sha256) throw new Error(`${state.stagedBox} changed while it was moved into place`);
  writeFileSync(`${state.stagedBox}.sha256`, `${sha256}  ${provider}.box\n`);
  copyFileSync(path.join(manifestDir, 'packages.tsv'), path.join(state.stagingDir, manifestFileName(provider)));
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

/**
 * A box that did not make it into place goes (kept with --keep-work, to look at), and so do the
 * folders made for it that stayed empty: an empty version folder would pass for a version.
 */
export async function removeStaging(state: BuildState): Promise<void> {
  const { stagingDir, createdBoxFolder } = state;
  if (!stagingDir || state.env.keepWork) return;
  rmSync(stagingDir, { recursive: true, force: true });
  state.env.watchdog?.unregister({ type: 'scratch', path: stagingDir });
  if (!createdBoxFolder || createdBoxFolder === stagingDir) return;
  for (let folder = path.dirname(stagingDir); readdirSync(folder).length === 0; folder = path.dirname(folder)) {
    rmdirSync(folder);
    if (folder === createdBoxFolder) return;
  }
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


/** Rename when on the same filesystem, else copy then delete. */
function moveFile(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    copyFileSync(from, to);
    rmSync(from);
  }
}
