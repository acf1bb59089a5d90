// Step package: the box staged beside its final folder with the package manifest the guest gave.
// boxsmith packages every provider's box itself from what Packer left (QEMU's disk, VirtualBox's
// and VMware's output directory; the layouts are those of Packer's vagrant post-processor), in one
// pass that writes it into the staging folder and hashes it. Its cleanup removes a box that did
// not make it into place.
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { StepContext } from '../exec/steps.ts';
import { runCaptured } from '../exec/captured.ts';
import { guestCompressorCommand } from '../definitions/compression-level.ts';
import { BOX_VAGRANTFILE, boxProvider, GUEST_MANIFEST } from '../render/context.ts';
import { writeChecksumFile } from '../store/box-store.ts';
import { virtualboxLayout, vmwareLayout } from '../store/box-layouts.ts';
import { libvirtLayout, packageBox, type BoxLayout } from '../store/box-packager.ts';
import { readManifest } from '../store/manifest.ts';
import { createStaging, removeStaging as removeStagingFolder, stagedFiles, stagingDir } from '../store/staging.ts';
import { boxCompression, boxCompressionLevel, boxDirectory, toolTimeoutMs, type BuildState, type GuestContent } from './build-state.ts';

/** Packages the box from what Packer left and stages it, with its checksum, beside its final folder. */
export async function packageStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { target, env } = state;
  const artifact = state.artifact!;
  if (!existsSync(artifact) || (statSync(artifact).isFile() && statSync(artifact).size === 0)) {
    throw new Error(`Packer reported success but left nothing to package at ${artifact}`);
  }
  const manifestDir = path.join(state.packerWorkDir, 'manifest');
  checkGuestManifest(manifestDir);
  // The guest is done: its tar has reached the listener, and is compressed there soon after.
  if (state.contentSink) state.hostContent = await state.contentSink.finished();
  const guest = readGuestManifest(manifestDir, state);
  const layout = await boxLayout(state, ctx);
  const provider = boxProvider(target.provider);
  // The watchdog is told before the folder exists: a SIGKILL right after mkdir leaves nothing.
  const versionDir = boxDirectory(env.boxesDir, target, env.version);
  if (!env.keepWork) env.watchdog?.register({ type: 'scratch', path: stagingDir(versionDir, provider, env.runId) });
  state.staging = createStaging(versionDir, provider, env.runId);
  const box = stagedFiles(state.staging).box;
  const packed = await packageBox(layout, box, { compression: boxCompression(state), level: boxCompressionLevel(state), signal: ctx.signal });
  const expected = ['metadata.json', 'Vagrantfile', ...layout.files.map((file) => file.name)];
  if (packed.entries.join(' ') !== expected.join(' ')) throw new Error(`${box}: packaged ${packed.entries.join(', ')}, expected ${expected.join(', ')}`);
  writeChecksumFile(box, packed.sha256);
  copyFileSync(path.join(manifestDir, 'packages.tsv'), stagedFiles(state.staging).packageManifest);
  state.stagedBox = box;
  state.sha256 = packed.sha256;
  state.compression = packed.compression;
  state.compressionLevel = packed.level;
  state.compressor = packed.compressor;
  state.guest = guest;
}

/** The provider's box layout over what Packer left, with the rendered Vagrantfile. */
async function boxLayout(state: BuildState, ctx: StepContext): Promise<BoxLayout> {
  const artifact = state.artifact!;
  const vagrantfile = path.join(state.templateDir, BOX_VAGRANTFILE);
  switch (state.target.provider) {
    case 'qemu':
      return libvirtLayout(artifact, await virtualSize(artifact, ctx), vagrantfile);
    case 'virtualbox':
      return virtualboxLayout(artifact, vagrantfile);
    case 'vmware':
      return vmwareLayout(artifact, vagrantfile);
  }
}

/** The disk's virtual size in bytes, as qemu-img reads it (the box's metadata gives it in GiB). */
async function virtualSize(disk: string, ctx: StepContext): Promise<number> {
  const info = await runCaptured('qemu-img', ['info', '--output=json', disk], { timeoutMs: toolTimeoutMs(ctx) });
  const size = info.exitCode === 0 ? (JSON.parse(info.stdout) as { 'virtual-size'?: unknown })['virtual-size'] : undefined;
  if (typeof size !== 'number') throw new Error(`qemu-img info ${disk} failed: ${(info.startError?.message ?? info.stderr).trim().split('\n')[0]}`);
  return size;
}

function checkGuestManifest(dir: string): void {
  const missing = GUEST_MANIFEST.files.filter((file) => !existsSync(path.join(dir, file)));
  if (missing.length) throw new Error(`Packer reported success but brought no ${missing.join(', ')} from the guest into ${dir} (scripts/manifest.sh)`);
}

/** What scripts/manifest.sh and content-size.sh wrote and Packer downloaded: the packages (checked line by line), the kernel, Docker's version, the guest's files. */
function readGuestManifest(dir: string, state: BuildState): NonNullable<BuildState['guest']> {
  const line = (file: string) => readFileSync(path.join(dir, file), 'utf8').trim();
  const kernel = line('kernel');
  if (!/^\S+$/.test(kernel)) throw new Error(`${path.join(dir, 'kernel')}: expected the kernel release (uname -r), found ${JSON.stringify(kernel.slice(0, 80))}`);
  const docker = line('docker');
  const packages = readManifest(path.join(dir, 'packages.tsv')).length;
  if (packages === 0) throw new Error(`${path.join(dir, 'packages.tsv')} lists no package`);
  return { kernel, ...(docker ? { docker } : {}), packages, content: readGuestContent(path.join(dir, 'content.tsv'), state) };
}

/**
 * content-size.sh's content.tsv (`name<TAB>value` lines) joined with what the host's listener
 * counted: the tar must have arrived whole (as many bytes as the guest's tar said it wrote).
 */
function readGuestContent(file: string, state: BuildState): GuestContent {
  const fields = new Map<string, string>(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line): [string, string] => {
        const tab = line.indexOf('\t');
        return tab < 0 ? [line, ''] : [line.slice(0, tab), line.slice(tab + 1)];
      }),
  );
  const count = (name: string): number => {
    const value = fields.get(name);
    if (value === undefined || !/^\d+$/.test(value)) throw new Error(`${file}: expected ${name} as a byte count, found ${JSON.stringify(value ?? null)} (scripts/content-size.sh)`);
    return Number(value);
  };
  const compression = boxCompression(state);
  const level = boxCompressionLevel(state);
  const content = { used_bytes: count('used_bytes'), tar_bytes: count('tar_bytes'), compression, level };
  const { hostContent } = state;
  if (hostContent) {
    if (hostContent.tarBytes !== content.tar_bytes) {
      throw new Error(`the guest's tar was cut short: ${hostContent.tarBytes} of the ${content.tar_bytes} bytes it wrote reached the build host (scripts/content-size.sh)`);
    }
    return { ...content, tar_compressed_bytes: hostContent.compressedBytes, compressed_on: 'host' };
  }
  const expected = guestCompressorCommand(compression, level);
  if (fields.get('compressor') !== expected) throw new Error(`${file}: the guest compressed with ${JSON.stringify(fields.get('compressor') ?? 'nothing')}, not ${expected} as the box is (scripts/content-size.sh)`);
  return { ...content, tar_compressed_bytes: count('tar_compressed_bytes'), compressed_on: 'guest' };
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


