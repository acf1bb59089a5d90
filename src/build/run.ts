// `boxsmith build`: several boxes x providers at once, bounded by what the host can hold, under
// one watchdog, one package cache and one interrupt handler. One failure does not stop the
// others; the result says whether all succeeded.
import { cpus, freemem } from 'node:os';
import path from 'node:path';
import { Listr, PRESET_TIMER, PRESET_TIMESTAMP } from 'listr2';
import { displayPath } from '../definitions/errors.ts';
import type { LoadedDefinition } from '../definitions/load.ts';
import type { BoxCompression, Provider } from '../definitions/names.ts';
import { findExecutable, toolEnvVar, toolPath } from '../exec/tools.ts';
import type { PackerVersion } from '../packer/version.ts';
import { chooseAccelerator, type AcceleratorChoice } from './accelerator.ts';
import { AptCache } from './apt-cache.ts';
import { withRunContext } from './run-context.ts';
import { claimOutputFolders } from '../run-settings.ts';
import { boxProvider } from '../render/context.ts';
import { TimeLimitReached } from '../exec/errors.ts';
import { formatDuration, parseDuration, setLongTimeout } from '../exec/timeouts.ts';
import { buildTarget, type BuildEnvironment, type BuildResult, type BuildTarget } from './pipeline.ts';

/** The program that shows a hypervisor is installed, and how to say it is not. */
const HYPERVISORS: Record<Provider, { tool: () => string; name: string }> = {
  virtualbox: { tool: () => toolPath('vboxmanage'), name: 'VirtualBox (VBoxManage)' },
  vmware: { tool: () => toolPath('vmrun'), name: 'VMware Workstation/Fusion (vmrun)' },
  qemu: { tool: () => toolPath('qemu'), name: 'QEMU (qemu-system-x86_64)' },
};

export function hypervisorInstalled(provider: Provider): boolean {
  return findExecutable(HYPERVISORS[provider].tool()) !== null;
}

function missingHypervisor(provider: Provider): string {
  const tool = HYPERVISORS[provider].tool();
  return `${HYPERVISORS[provider].name} is not installed on this host (no ${tool} on PATH; install it, or set ${toolEnvVar(provider === 'virtualbox' ? 'vboxmanage' : provider === 'vmware' ? 'vmrun' : 'qemu')} to its path)`;
}

export interface BuildPlan {
  targets: BuildTarget[];
  /** Providers left out because their hypervisor is missing, with why. */
  skipped: { box: string; provider: Provider; reason: string }[];
}

/**
 * What to build: the providers asked for, or else every provider of the definition whose
 * hypervisor this host has.
 */
export function planBuilds(boxes: LoadedDefinition[], requested: Provider[]): BuildPlan {
  const plan: BuildPlan = { targets: [], skipped: [] };
  for (const loaded of boxes) {
    const wanted = requested.length ? requested : loaded.definition.providers;
    for (const provider of wanted) {
      if (!loaded.definition.providers.includes(provider)) {
        throw new Error(`${loaded.box} has no ${provider} build (its providers: ${loaded.definition.providers.join(', ')})`);
      }
      if (hypervisorInstalled(provider)) plan.targets.push({ loaded, provider });
      else plan.skipped.push({ box: loaded.box, provider, reason: missingHypervisor(provider) });
    }
  }
  return plan;
}

/** How many VMs fit at once: a core each under emulation, and their memory plus overhead. */
export function parallelLimit(targets: BuildTarget[]): number {
  const perVmMb = Math.max(1024, ...targets.map((t) => t.loaded.definition.hardware.memory_mb)) + 768;
  const byMemory = Math.floor((freemem() / 1048576 - 1024) / perVmMb);
  return Math.max(1, Math.min(cpus().length, byMemory, targets.length || 1));
}

export interface BuildRunOptions {
  targets: BuildTarget[];
  version: string;
  packer: PackerVersion;
  parallel?: number;
  timeoutOverrides: Record<string, number>;
  boxesDir: string;
  workRoot: string;
  logsDir: string;
  cacheDir: string;
  keepWork: boolean;
  graceMs?: number;
  smokeTest: boolean;
  dockerImage?: string;
  aptCache: boolean;
  aptCachePort?: number;
  /** Overrides each definition's box.compression for the boxes boxsmith packages. */
  compression?: BoxCompression;
  /** Overrides each definition's box.compression_level (checked by the caller against the compression in effect). */
  compressionLevel?: number;
}

export interface BuildRunOutcome {
  results: BuildResult[];
  /** Set when the run was interrupted: the exit code the CLI should use. */
  interruptExitCode: number | null;
  logRoot: string;
}

export async function runBuilds(options: BuildRunOptions): Promise<BuildRunOutcome> {
  // Before any step: a folder that is not boxsmith's is refused with nothing written anywhere.
  claimOutputFolders({ boxes: options.boxesDir, work: options.workRoot, logs: options.logsDir, cache: options.cacheDir });
  const outcome = await withRunContext(options.logsDir, async ({ runId, logRoot, signal: interrupted, watchdog }) => {
    let aptCache: AptCache | undefined;
    // The whole run's time limit, over all builds: `--timeout run=3h`, else the longest `run` of the definitions.
    const runLimitMs = options.timeoutOverrides.run ?? Math.max(...options.targets.map((t) => parseDuration(t.loaded.definition.timeouts.run)));
    const runLimit = new AbortController();
    const cancelRunTimer = setLongTimeout(() => runLimit.abort(new TimeLimitReached('run', 'run', runLimitMs)), runLimitMs);
    const signal = AbortSignal.any([interrupted, runLimit.signal]);
    try {
      if (options.aptCache) {
        aptCache = await AptCache.start({
          cacheDir: options.cacheDir,
          runId,
          watchdog,
          signal,
          ...(options.aptCachePort !== undefined ? { port: options.aptCachePort } : {}),
          backends: mirrorsOf(options.targets),
          onRestart: (message) => console.log(message),
        });
      }
      let accelerator: AcceleratorChoice | undefined;
      const qemuTarget = options.targets.find((t) => t.provider === 'qemu');
      if (qemuTarget) accelerator = await chooseAccelerator(qemuTarget.loaded.definition.qemu.accelerator, options.cacheDir);

      const env: Omit<BuildEnvironment, 'onStep' | 'onLine'> = {
        runId,
        version: options.version,
        packer: options.packer,
        boxesDir: options.boxesDir,
        workRoot: options.workRoot,
        logRoot,
        cacheDir: options.cacheDir,
        signal,
        watchdog,
        ...(aptCache ? { aptCache } : {}),
        ...(accelerator ? { accelerator } : {}),
        timeoutOverrides: options.timeoutOverrides,
        keepWork: options.keepWork,
        ...(options.graceMs !== undefined ? { graceMs: options.graceMs } : {}),
        smokeTest: options.smokeTest,
        ...(options.dockerImage ? { dockerImage: options.dockerImage } : {}),
        ...(options.compression ? { compression: options.compression } : {}),
        ...(options.compressionLevel !== undefined ? { compressionLevel: options.compressionLevel } : {}),
      };
      console.log(`run ${runId}: logs in ${logRoot}`);
      console.log(aptCache ? `package cache: apt-cacher-ng (pid ${aptCache.pid}) on ${aptCache.hostUrl} (guests: ${aptCache.guestUrl})` : 'package cache: off');
      if (accelerator) console.log(`QEMU accelerator: ${accelerator.accelerator} (${accelerator.reason})`);
      return await runWithProgress(options.targets, env, options.parallel ?? parallelLimit(options.targets));
    } finally {
      cancelRunTimer();
      await aptCache?.stop().catch(() => undefined);
    }
  });
  return { results: outcome.value, interruptExitCode: outcome.interruptExitCode, logRoot: outcome.logRoot };
}

function mirrorsOf(targets: BuildTarget[]): { debian: string[]; ubuntu: string[] } {
  const debian: string[] = [];
  const ubuntu: string[] = [];
  for (const { loaded } of targets) {
    const { base, os } = loaded.definition;
    if (base.debootstrap) debian.push(base.debootstrap.mirror);
    if (base.installer && os.family === 'ubuntu') ubuntu.push(`http://${base.installer.preseed.mirror_host}${base.installer.preseed.mirror_directory}`);
    if (base.installer && os.family === 'debian') debian.push(`http://${base.installer.preseed.mirror_host}${base.installer.preseed.mirror_directory}`);
  }
  return { debian: debian.length ? debian : ['http://deb.debian.org/debian'], ubuntu: ubuntu.length ? ubuntu : ['http://archive.ubuntu.com/ubuntu'] };
}

/** listr2: boxes x providers with their stage and elapsed time on a TTY, timestamped lines elsewhere. */
async function runWithProgress(targets: BuildTarget[], env: Omit<BuildEnvironment, 'onStep' | 'onLine'>, limit: number): Promise<BuildResult[]> {
  const results: BuildResult[] = [];
  const plain = !process.stdout.isTTY || process.env.CI === 'true';
  const label = (t: BuildTarget) => `${t.loaded.definition.org}/${t.loaded.definition.box_name} (${boxProvider(t.provider)})`;
  const list = new Listr(
    targets.map((target) => ({
      title: label(target),
      task: async (_ctx: unknown, task: { title: string; output: string }) => {
        const started = Date.now();
        let step = 'starting';
        // Without a terminal to redraw, every line would scroll by; the logs have them all.
        const lineEveryMs = plain ? 15_000 : 0;
        let lastLine = 0;
        let stepStarted = started;
        const showStep = () => {
          task.title = `${label(target)}: ${step} ${formatDuration(Math.floor((Date.now() - stepStarted) / 1000) * 1000)} (total ${formatDuration(Math.floor((Date.now() - started) / 1000) * 1000)})`;
        };
        // On a terminal the title is redrawn anyway: keep the elapsed times in it current.
        const ticker = plain ? undefined : setInterval(showStep, 1000);
        const result = await buildTarget(target, {
          ...env,
          onStep: (name) => {
            step = name;
            stepStarted = Date.now();
            if (plain) task.title = `${label(target)}: ${name}`;
            else showStep();
          },
          onLine: (line) => {
            if (Date.now() - lastLine < lineEveryMs) return;
            lastLine = Date.now();
            task.output = `[${step} ${Math.round((Date.now() - started) / 1000)}s] ${displayLine(line)}`;
          },
        }).finally(() => clearInterval(ticker));
        results.push(result);
        if (!result.ok) throw result.error instanceof Error ? result.error : new Error(String(result.error));
        task.title = `${label(target)}: ${result.boxFile} (${Math.round((Date.now() - started) / 1000)}s)`;
      },
    })),
    {
      concurrent: limit,
      exitOnError: false,
      collectErrors: false,
      // Interrupts are boxsmith's: listr2's own handler would exit at once (code 127), skipping the cleanups.
      registerSignalListeners: false,
      renderer: 'default',
      rendererOptions: { collapseSubtasks: false, outputBar: 1, timer: PRESET_TIMER },
      fallbackRenderer: 'simple',
      fallbackRendererOptions: { timestamp: PRESET_TIMESTAMP, timer: PRESET_TIMER },
      fallbackRendererCondition: plain,
    } as ConstructorParameters<typeof Listr>[1],
  );
  await list.run().catch(() => undefined);
  return targets.map((target) => results.find((r) => r.target === target) ?? { target, ok: false, error: new Error('not run'), logDir: env.logRoot });
}


/**
 * A program's output line as one short line for the display: progress meters that redraw
 * themselves (`\r`, ANSI erase codes, as vagrant's upload progress) become their last state.
 */
export function displayLine(line: string, width = 160): string {
  // eslint-disable-next-line no-control-regex
  const plain = line.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '\r').split('\r').map((part) => part.trim()).filter(Boolean).pop() ?? '';
  return plain.length > width ? `${plain.slice(0, width - 1)}…` : plain;
}

/** One line a build (and its logs where it failed), then the providers left out and why. */
export function buildSummary(results: BuildResult[], skipped: BuildPlan['skipped']): string {
  const lines: string[] = [];
  for (const result of results) {
    const name = `${result.target.loaded.box} (${result.target.provider})`;
    if (result.ok) {
      lines.push(`ok      ${name}: ${displayPath(result.boxFile!)} sha256 ${result.record!.sha256.slice(0, 16)}… ${JSON.stringify(result.record!.durations_s)}`);
    } else {
      const message = result.error instanceof Error ? result.error.message : String(result.error);
      lines.push(`FAILED  ${name}: ${message}\n        logs: ${displayPath(result.logDir)}`);
    }
  }
  for (const skip of skipped) lines.push(`skipped ${skip.box} (${skip.provider}): ${skip.reason}`);
  return lines.join('\n');
}
