// One box for one provider, from definition to a verified, tested .box: render -> inputs -> build
// (Packer) -> package -> smoke -> record, each a step with a time limit and a cleanup (Packer's
// multistep, over a state bag). The box is verified and staged beside its final place, smoke-tested
// there, and only then renamed into boxes/<org>/<box>/<version>/ with its checksum, record and test
// results, so a failed or untested build never touches the last good box.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LoadedDefinition } from '../definitions/load.ts';
import type { Provider } from '../definitions/schema.ts';
import { runCaptured } from '../exec/captured.ts';
import { parseDuration } from '../exec/timeouts.ts';
import { runSteps, type Step, type StepContext, type StepsReport } from '../exec/steps.ts';
import { toolPath } from '../exec/tools.ts';
import { isQemuProcess, isVirtualBoxVmProcess, VmProcessWatch } from '../exec/vm-watch.ts';
import type { Watchdog, WatchdogTarget } from '../exec/watchdog.ts';
import { ensureIso, type EnsuredIso } from '../inputs/iso.ts';
import type { PackerVersion } from '../packer/version.ts';
import { boxProvider, sourceRef } from '../render/context.ts';
import { REPO_ROOT, renderToDirectory } from '../render/render.ts';
import type { AcceleratorChoice } from './accelerator.ts';
import type { AptCache } from './apt-cache.ts';
import { smokeTest, type SmokeResult } from '../smoke/smoke.ts';
import { hashFile } from '../inputs/checksum.ts';
import { ensureBaseImage, type BaseImage } from './base-image.ts';
import { withBuildLock } from './build-lock.ts';
import { CommandRunner } from '../exec/command-runner.ts';
import { StageLog } from '../exec/stage-log.ts';

export const BUILD_STEPS = ['render', 'inputs', 'build', 'package', 'smoke', 'record'] as const;
export type BuildStepName = (typeof BUILD_STEPS)[number];

export interface BuildTarget {
  loaded: LoadedDefinition;
  provider: Provider;
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
  /** Between SIGTERM and SIGKILL when a stage is stopped (default 10 s). */
  graceMs?: number;
  /** Progress: the step a build is in, and lines worth showing. */
  onStep?: (step: BuildStepName, target: BuildTarget) => void;
  onLine?: (line: string, target: BuildTarget) => void;
}

export interface BuildRecord {
  box: string;
  name: string;
  version: string;
  provider: string;
  file: string;
  size: number;
  sha256: string;
  git_revision: string;
  packer_version: string;
  hypervisor_version: string;
  accelerator?: string;
  base: { kind: string; iso?: string; base_image_sha256?: string; base_image_cached?: boolean };
  run_id: string;
  built_at: string;
  durations_s: Record<string, number>;
  smoke_test: { passed: boolean; checks: number } | 'skipped';
}

export interface BuildResult {
  target: BuildTarget;
  ok: boolean;
  record?: BuildRecord;
  boxFile?: string;
  error?: unknown;
  report?: StepsReport;
  logDir: string;
}

interface BuildState {
  target: BuildTarget;
  env: BuildEnvironment;
  logDir: string;
  workDir: string;
  templateDir: string;
  packerWorkDir: string;
  iso?: EnsuredIso;
  baseImage?: BaseImage;
  artifact?: string;
  /** Where the box and its files wait to be put in place, beside their final folder. */
  stagingDir?: string;
  /** The topmost folder the package step made for the staging folder (undefined: none). */
  createdBoxFolder?: string;
  stagedBox?: string;
  boxFile?: string;
  sha256?: string;
  smoke?: SmokeResult;
  record?: BuildRecord;
  durations: Record<string, number>;
}

export function boxDirectory(boxesDir: string, target: BuildTarget, version: string): string {
  const { org, box_name } = target.loaded.definition;
  return path.join(boxesDir, org, box_name, version);
}

/** Builds one box for one provider. Never throws: the result says how it went. */
export async function buildTarget(target: BuildTarget, env: BuildEnvironment): Promise<BuildResult> {
  const id = `${target.loaded.box}-${target.provider}`;
  const state: BuildState = {
    target,
    env,
    logDir: path.join(env.logRoot, id),
    workDir: path.join(env.workRoot, `${id}-${env.runId}`),
    templateDir: path.join(env.workRoot, `${id}-${env.runId}`, 'template'),
    packerWorkDir: path.join(env.workRoot, `${id}-${env.runId}`, 'packer'),
    durations: {},
  };
  // The build's logs (Packer's among them) are its user's alone, whatever the umask.
  mkdirSync(state.logDir, { recursive: true, mode: 0o700 });
  chmodSync(state.logDir, 0o700);
  const timeouts = target.loaded.definition.timeouts;
  const limit = (name: keyof typeof timeouts) => parseDuration(timeouts[name]);
  const steps: Step<BuildState>[] = [
    { name: 'render', timeoutMs: limit('render'), run: renderStep, cleanup: removeWorkDir },
    { name: 'inputs', timeoutMs: limit('inputs'), run: inputsStep },
    { name: 'build', timeoutMs: limit('build'), run: packerStep },
    { name: 'package', timeoutMs: limit('package'), run: sayingDiskFull(packageStep), cleanup: removeStaging },
    ...(env.smokeTest ? [{ name: 'smoke', timeoutMs: limit('smoke'), run: smokeStep }] : []),
    { name: 'record', timeoutMs: limit('record'), run: sayingDiskFull(recordStep) },
  ];
  try {
    const report = await withBuildLock(env.cacheDir, target.loaded.box, target.provider, () => runSteps(steps, state, {
      signal: env.signal,
      timeoutOverrides: env.timeoutOverrides,
      runTimeoutMs: env.timeoutOverrides.run ?? limit('run'),
      onEvent: (event) => {
        if (event.type === 'step-start') env.onStep?.(event.step as BuildStepName, target);
        // The record step writes the durations of the steps before it.
        if (event.type === 'step-end') state.durations[event.record.name] = Math.round(event.record.durationMs / 100) / 10;
      },
    }), { signal: env.signal, onWait: (message) => env.onLine?.(message, target) });
    return { target, ok: true, record: state.record!, boxFile: state.boxFile!, report, logDir: state.logDir };
  } catch (error) {
    return { target, ok: false, error, logDir: state.logDir };
  }
}

function runner(state: BuildState, stage: string, ctx: StepContext): CommandRunner {
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

async function renderStep(state: BuildState): Promise<void> {
  // Packer's VM disks live here: if boxsmith is killed outright, its watchdog removes them.
  if (!state.env.keepWork) state.env.watchdog?.register({ type: 'scratch', path: state.workDir });
  renderToDirectory(state.target.loaded.box, state.templateDir, { packer: state.env.packer, definitionsDir: path.dirname(state.target.loaded.files[0]!) });
}

async function removeWorkDir(state: BuildState): Promise<void> {
  if (state.env.keepWork) return;
  rmSync(state.workDir, { recursive: true, force: true });
  state.env.watchdog?.unregister({ type: 'scratch', path: state.workDir });
}

async function inputsStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { definition, box } = state.target.loaded;
  // Shown throttled while the step runs, so also kept in the step's log.
  const warn = (message: string) => {
    const log = new StageLog(path.join(state.logDir, 'inputs.log'));
    log.note(message);
    log.close();
    state.env.onLine?.(message, state.target);
  };
  if (definition.base.kind === 'iso') {
    state.iso = await ensureIso(definition.base.iso!, {
      cacheDir: state.env.cacheDir,
      signal: ctx.signal,
      onWarning: warn,
      onProgress: (progress) => state.env.onLine?.(`${definition.base.iso!.file} ${progressBar(progress.received, progress.total)}`, state.target),
    });
  } else {
    state.baseImage = await ensureBaseImage({
      box,
      definition,
      cacheDir: state.env.cacheDir,
      root: REPO_ROOT,
      aptProxy: state.env.aptCache?.hostUrl,
      runner: runner(state, 'inputs', ctx),
      onWarning: warn,
      signal: ctx.signal,
      onWait: warn,
    });
    state.env.onLine?.(`base image ${state.baseImage.cached ? 'from the cache' : 'made'}: ${state.baseImage.path}`, state.target);
  }
}

async function packerStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { env, target } = state;
  const commands = runner(state, 'build', ctx);
  const packer = toolPath('packer');
  const packerEnv = {
    PACKER_LOG: '1',
    PACKER_LOG_PATH: path.join(state.logDir, 'packer.log'),
    PACKER_CACHE_DIR: path.join(env.cacheDir, 'packer'),
    CHECKPOINT_DISABLE: '1',
    PACKER_NO_COLOR: '1',
  };
  if (env.packer.modern) await commands.run(packer, ['init', state.templateDir], { env: packerEnv });

  const variables: Record<string, string> = {
    work_dir: state.packerWorkDir,
    headless: 'true',
    // Guests reach the host's loopback as 10.0.2.2 on QEMU's and VirtualBox's NAT, not on VMware's.
    apt_proxy: env.aptCache && target.provider !== 'vmware' ? env.aptCache.guestUrl : '',
  };
  if (state.iso) {
    variables.iso_urls = JSON.stringify([`file://${state.iso.path}`]);
    variables.iso_checksum = state.iso.checksum;
  }
  if (state.baseImage) {
    variables.base_image = state.baseImage.path;
    variables.base_image_checksum = `sha256:${state.baseImage.sha256}`;
  }
  if (target.provider === 'qemu') {
    variables.qemu_accelerator = env.accelerator?.accelerator ?? 'tcg';
    variables.qemu_binary = toolPath('qemu');
  }
  mkdirSync(path.dirname(state.packerWorkDir), { recursive: true });
  rmSync(state.packerWorkDir, { recursive: true, force: true });

  // The build VM, known to the watchdog before Packer makes it: should boxsmith be killed outright,
  // the watchdog powers it off and deletes it with the hypervisor's own tool (QEMU: by its pid).
  const builtVm = buildVmTarget(state);
  if (builtVm) env.watchdog?.register(builtVm);
  const vm = new VmProcessWatch({
    label: target.provider === 'qemu' ? 'QEMU' : 'VirtualBox',
    match: target.provider === 'qemu' ? isQemuProcess : isVirtualBoxVmProcess,
    onFound: (process) => {
      if (target.provider === 'qemu') env.watchdog?.register({ type: 'vm', kind: 'qemu', pid: process.pid, startTime: process.startTime });
    },
  });
  await commands.run(
    packer,
    [
      'build',
      `-only=${sourceRef(target.provider)}`,
      '-on-error=cleanup',
      '-color=false',
      ...Object.entries(variables).flatMap(([name, value]) => ['-var', `${name}=${value}`]),
      state.templateDir,
    ],
    {
      env: packerEnv,
      ...(target.provider !== 'vmware' ? { watch: vm.check } : {}),
      // From here on QEMU is meant to exit: Packer shuts the VM down, then converts its disk.
      onLine: (line) => {
        if (/Gracefully halting virtual machine|Stopping virtual machine/.test(line)) vm.disarm();
      },
    },
  ).finally(() => vm.disarm());
  // Packer removed its VM (the box is made from what it exported): nothing left to tear down.
  if (builtVm) env.watchdog?.unregister(builtVm);
  state.artifact = path.join(state.packerWorkDir, `${boxProvider(target.provider)}.box`);
}

/** The VirtualBox VM (by name) or VMware VM (by .vmx) Packer makes for this build, as the template names them. */
function buildVmTarget(state: BuildState): WatchdogTarget | undefined {
  const name = state.target.loaded.definition.box_name;
  if (state.target.provider === 'virtualbox') return { type: 'vm', kind: 'virtualbox', name };
  if (state.target.provider === 'vmware') return { type: 'vm', kind: 'vmware', vmx: path.join(state.packerWorkDir, 'vmware', `${name}.vmx`) };
  return undefined;
}

/** Verifies the box Packer made and stages it, with its checksum, beside its final folder. */
async function packageStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { target, env } = state;
  const artifact = state.artifact!;
  if (!existsSync(artifact) || statSync(artifact).size === 0) throw new Error(`Packer reported success but made no box at ${artifact}`);
  const provider = boxProvider(target.provider);
  const listing = await runner(state, 'package', ctx).run('tar', ['-xzOf', artifact, 'metadata.json'], { capture: true });
  let metadata: { provider?: string };
  try {
    metadata = JSON.parse(listing.stdout) as { provider?: string };
  } catch {
    throw new Error(`${artifact} has no readable metadata.json: it is not a Vagrant box`);
  }
  if (metadata.provider !== provider) throw new Error(`${artifact} is a box for "${metadata.provider}", not ${provider}`);

  const { hex: sha256 } = await hashFile(artifact, 'sha256');
  const dir = boxDirectory(env.boxesDir, target, env.version);
  state.stagingDir = path.join(dir, `.staging-${provider}-${env.runId}`);
  state.createdBoxFolder = mkdirSync(state.stagingDir, { recursive: true });
  if (!env.keepWork) env.watchdog?.register({ type: 'scratch', path: state.stagingDir });
  state.stagedBox = path.join(state.stagingDir, `${provider}.box`);
  moveFile(artifact, state.stagedBox);
  if ((await hashFile(state.stagedBox, 'sha256')).hex !== sha256) throw new Error(`${state.stagedBox} changed while it was moved into place`);
  writeFileSync(`${state.stagedBox}.sha256`, `${sha256}  ${provider}.box\n`);
  state.sha256 = sha256;
}

/**
 * A box that did not make it into place goes (kept with --keep-work, to look at), and so do the
 * folders made for it that stayed empty: an empty version folder would pass for a version.
 */
async function removeStaging(state: BuildState): Promise<void> {
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
function sayingDiskFull(step: (state: BuildState, ctx: StepContext) => Promise<void>) {
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

async function smokeStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { env, target } = state;
  state.smoke = await smokeTest({
    loaded: target.loaded,
    provider: target.provider,
    boxFile: state.stagedBox!,
    sha256: state.sha256!,
    version: env.version,
    logDir: path.join(state.logDir, 'smoke'),
    signal: ctx.signal,
    ...(env.watchdog ? { watchdog: env.watchdog } : {}),
    accelerator: env.accelerator?.accelerator ?? 'tcg',
    ...(env.dockerImage ? { dockerImage: env.dockerImage } : {}),
    timeLimitMs: ctx.remainingMs(),
    ...(env.graceMs !== undefined ? { graceMs: env.graceMs } : {}),
    onLine: (line) => env.onLine?.(line, target),
  });
  if (!state.smoke.passed) throw new SmokeTestFailedError(state.smoke);
}

export class SmokeTestFailedError extends Error {
  constructor(readonly result: SmokeResult) {
    const failed = result.checks.filter((c) => !c.passed);
    super(
      result.error
        ? `smoke test could not run its checks: ${result.error}`
        : `smoke test failed ${failed.length} of ${result.checks.length} checks:\n${failed.map((c) => `  ${c.name}: expected ${c.expected}; got ${c.actual.split('\n')[0] ?? ''} (command: ${c.command})`).join('\n')}`,
    );
    this.name = 'SmokeTestFailedError';
  }
}

async function recordStep(state: BuildState): Promise<void> {
  const { target, env } = state;
  const { definition, box } = target.loaded;
  const provider = boxProvider(target.provider);
  const record: BuildRecord = {
    box,
    name: `${definition.org}/${definition.box_name}`,
    version: env.version,
    provider,
    file: `${provider}.box`,
    size: statSync(state.stagedBox!).size,
    sha256: state.sha256!,
    git_revision: await gitRevision(),
    packer_version: env.packer.version,
    hypervisor_version: await hypervisorVersion(target.provider),
    ...(target.provider === 'qemu' && env.accelerator ? { accelerator: env.accelerator.accelerator } : {}),
    base: {
      kind: definition.base.kind,
      ...(state.iso ? { iso: definition.base.iso!.file } : {}),
      ...(state.baseImage ? { base_image_sha256: state.baseImage.sha256, base_image_cached: state.baseImage.cached } : {}),
    },
    run_id: env.runId,
    built_at: new Date().toISOString(),
    durations_s: { ...state.durations },
    smoke_test: state.smoke ? { passed: state.smoke.passed, checks: state.smoke.checks.length } : 'skipped',
  };
  writeFileSync(path.join(state.stagingDir!, `${provider}.json`), `${JSON.stringify(record, null, 2)}\n`);
  state.record = record;
  state.boxFile = promote(state.stagingDir!, boxDirectory(env.boxesDir, target, env.version), provider);
}

/**
 * Moves the staged files into the version folder, each by rename, the box last: its checksum,
 * record and test results are in place before it is.
 */
function promote(stagingDir: string, dir: string, provider: string): string {
  const sidecars = [`${provider}.box.sha256`, `${provider}.json`, `${provider}.smoke.json`, `${provider}.smoke.xml`];
  for (const name of sidecars) {
    if (existsSync(path.join(stagingDir, name))) renameSync(path.join(stagingDir, name), path.join(dir, name));
    else rmSync(path.join(dir, name), { force: true }); // a result of an earlier build does not describe this box
  }
  renameSync(path.join(stagingDir, `${provider}.box`), path.join(dir, `${provider}.box`));
  rmSync(stagingDir, { recursive: true, force: true });
  return path.join(dir, `${provider}.box`);
}

/** `[########------------]  40%  265 of 662 MiB`, or just the MiB when the size is unknown. */
export function progressBar(received: number, total: number | undefined, width = 20): string {
  const mib = (bytes: number) => (bytes / 1048576).toFixed(0);
  if (!total) return `${mib(received)} MiB`;
  const fraction = Math.min(1, received / total);
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${mib(received)} of ${mib(total)} MiB`;
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

async function gitRevision(): Promise<string> {
  const head = await runCaptured('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD'], { timeoutMs: 10_000 });
  if (head.exitCode !== 0) return 'unknown';
  const dirty = await runCaptured('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no'], { timeoutMs: 10_000 });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? '-dirty' : ''}`;
}

async function hypervisorVersion(provider: Provider): Promise<string> {
  const [command, args] =
    provider === 'qemu' ? [toolPath('qemu'), ['--version']] : provider === 'virtualbox' ? [toolPath('vboxmanage'), ['--version']] : [toolPath('vmrun'), []];
  const result = await runCaptured(command, args, { timeoutMs: 10_000 });
  return `${result.stdout}${result.stderr}`.split('\n').find((line) => /\d+\.\d+/.test(line))?.trim() ?? 'unknown';
}
