// The state bag of one build's steps (Packer's multistep): what the build is of, where it writes,
// and what each step leaves for the next; and the runner its steps start programs with.
import path from 'node:path';
import { versionDirectory } from '../store/box-store.ts';
import type { BuildRecord } from '../store/build-record.ts';
import type { Staging } from '../store/staging.ts';
import type { LoadedDefinition } from '../definitions/load.ts';
import type { BoxCompression, Provider } from '../definitions/names.ts';
import { COMPRESSION_LEVELS } from '../definitions/compression-level.ts';
import { type StepContext, type StepsReport } from '../exec/steps.ts';
import type { HypervisorVm } from '../exec/vm-teardown.ts';
import type { Watchdog } from '../exec/watchdog.ts';
import { type EnsuredIso } from '../inputs/iso.ts';
import type { PackerVersion } from '../packer/version.ts';
import type { AcceleratorChoice } from './accelerator.ts';
import type { AptCache } from './apt-cache.ts';
import { smokeTest, type SmokeResult } from '../smoke/smoke.ts';
import { type BaseImage } from './base-image.ts';
import { CommandRunner } from '../exec/command-runner.ts';
import type { ArchiveSuite } from '../inputs/archive-state.ts';
import type { BoxInputs } from './box-inputs.ts';
import type { ContentSink, ReceivedContent } from './content-sink.ts';

/** The guest's files at the end of its build (scripts/content-size.sh), for the build record. */
export interface GuestContent {
  used_bytes: number;
  tar_bytes: number;
  /** The tar compressed as the box is (by `compressed_on`), at `level`. */
  tar_compressed_bytes: number;
  compression: BoxCompression;
  level: number;
  compressed_on: 'host' | 'guest';
}

export const BUILD_STEPS = ['render', 'inputs', 'build', 'package', 'smoke', 'record'] as const;
export type BuildStepName = (typeof BUILD_STEPS)[number];

export interface BuildTarget {
  loaded: LoadedDefinition;
  provider: Provider;
  /** Its inputs, when the caller found them out already (the nightly's plan); else the render step does. */
  inputs?: BoxInputs;
}

export interface BuildEnvironment {
  runId: string;
  version: string;
  packer: PackerVersion;
  /** boxes/: where finished boxes go. */
  boxesDir: string;
  /** Scratch space for rendered templates and Packer's VMs. */
  workRoot: string;
  /** logs/<run id>/ */
  logRoot: string;
  cacheDir: string;
  signal: AbortSignal;
  watchdog?: Watchdog;
  aptCache?: AptCache;
  accelerator?: AcceleratorChoice;
  timeoutOverrides: Record<string, number>;
  keepWork: boolean;
  /** Smoke-test each box before it is put in place (`--no-test` turns it off). */
  smokeTest: boolean;
  dockerImage?: string;
  /** `--compression`: over the definition's box.compression for the boxes boxsmith packages. */
  compression?: BoxCompression;
  /** `--compression-level`: over the definition's box.compression_level (checked against the compression in effect). */
  compressionLevel?: number;
  /** Between SIGTERM and SIGKILL when a stage is stopped (default 10 s). */
  graceMs?: number;
  /** Progress: the step a build is in, and lines worth showing. */
  onStep?: (step: BuildStepName, target: BuildTarget) => void;
  onLine?: (line: string, target: BuildTarget) => void;
}

export interface BuildResult {
  target: BuildTarget;
  ok: boolean;
  record?: BuildRecord;
  boxFile?: string;
  /** The smoke test's result, when it ran its checks. */
  smoke?: SmokeResult;
  error?: unknown;
  report?: StepsReport;
  logDir: string;
}

export interface BuildState {
  target: BuildTarget;
  env: BuildEnvironment;
  logDir: string;
  workDir: string;
  templateDir: string;
  packerWorkDir: string;
  iso?: EnsuredIso;
  /** Docker's static .tgz (docker.source static), verified in the input cache; Packer uploads it. */
  dockerStatic?: EnsuredIso;
  baseImage?: BaseImage;
  /** The private folder of QEMU's monitor socket (QEMU builds), removed by the build step's cleanup. */
  monitorDir?: string;
  /** The listener content-size.sh sends the guest's files to (not for VMware), closed by the build step's cleanup. */
  contentSink?: ContentSink;
  /** What it counted of them: the tar and the tar compressed as the box is. */
  hostContent?: ReceivedContent;
  /** The VirtualBox/VMware VM Packer is making; cleared once Packer has finished (and removed it). */
  buildVm?: HypervisorVm;
  archive?: ArchiveSuite[];
  /** What Packer left for the package step: QEMU's disk, VirtualBox's or VMware's output directory. */
  artifact?: string;
  /** What the guest said of itself at the end of its build (scripts/manifest.sh). */
  guest?: { kernel: string; docker?: string; packages: number; content: GuestContent };
  /** Where the box and its files wait to be put in place, beside their final folder. */
  staging?: Staging;
  stagedBox?: string;
  boxFile?: string;
  sha256?: string;
  /** How the staged box is compressed, as packaged. */
  compression?: BoxCompression;
  /** The level the staged box was compressed at. */
  compressionLevel?: number;
  /** The program that compressed it (PackagedBox.compressor). */
  compressor?: string;
  smoke?: SmokeResult;
  record?: BuildRecord;
  inputs?: BoxInputs;
  durations: Record<string, number>;
}

export function boxDirectory(boxesDir: string, target: BuildTarget, version: string): string {
  const { org, box_name } = target.loaded.definition;
  return versionDirectory(boxesDir, org, box_name, version);
}


export function stepRunner(state: BuildState, stage: string, ctx: StepContext): CommandRunner {
  const { env, target } = state;
  return new CommandRunner({
    stage,
    logDir: state.logDir,
    signal: ctx.signal,
    deadline: ctx.deadline,
    ...(env.watchdog ? { watchdog: env.watchdog } : {}),
    ...(env.graceMs !== undefined ? { graceMs: env.graceMs } : {}),
    onLine: (line) => env.onLine?.(line, target),
    // The VM's serial console (the template sends it there): its tail goes into timeout diagnostics.
    consoleLogs: [path.join(state.packerWorkDir, `${target.provider}-console.log`)],
  });
}

/** How this build's box is compressed: `--compression`, else the definition's box.compression. */
export function boxCompression(state: Pick<BuildState, 'env' | 'target'>): BoxCompression {
  return state.env.compression ?? state.target.loaded.definition.box.compression;
}

/** The level the box is compressed at: --compression-level over box.compression_level, else the compressor's default. */
export function boxCompressionLevel(state: Pick<BuildState, 'env' | 'target'>): number {
  return state.env.compressionLevel ?? state.target.loaded.definition.box.compression_level ?? COMPRESSION_LEVELS[boxCompression(state)].default;
}

/** A short tool call inside a step (a hypervisor's tool, qemu-img): at most a minute, and never past the step's or cleanup's own limit. */
export function toolTimeoutMs(ctx: Pick<StepContext, 'remainingMs'>): number {
  return Math.max(1000, Math.min(60_000, ctx.remainingMs()));
}
