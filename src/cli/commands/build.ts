import { checkToolOverrides, requireHome, writableFolder } from '../../environment.ts';
import { parseDuration } from '../../exec/timeouts.ts';
import { cacheRoot } from '../../inputs/cache.ts';
import { parsePackerVersion } from '../../packer/version.ts';
import { UsageError } from '../errors.ts';
import { defineCommand, flag, list, value } from '../spec.ts';
import { compressionLevelProblem } from '../../definitions/compression-level.ts';
import { boxCompression, compressionLevel, newBoxVersion, nonEmpty, port, providers, stageTimeouts, wholeNumber } from '../values.ts';

/** The output folders of a run, each checked to be writable before the run starts. */
export async function checkedOutputDirectories(): Promise<{ boxesDir: string; workRoot: string; logsDir: string }> {
  const { outputDirectories } = await import('../../run-settings.ts');
  const dirs = outputDirectories();
  writableFolder('BOXSMITH_BOXES', dirs.boxesDir);
  writableFolder('BOXSMITH_WORK', dirs.workRoot);
  writableFolder('BOXSMITH_LOGS', dirs.logsDir);
  return dirs;
}

/** What every command that runs Packer or Vagrant needs from the host. */
export function checkRunEnvironment(tools: ('packer' | 'vagrant')[]): void {
  requireHome();
  checkToolOverrides(tools);
  writableFolder('BOXSMITH_CACHE', cacheRoot());
}

export const build = defineCommand({
  name: 'build',
  summary: 'build .box files into boxes/<org>/<name>/<version>/, smoke-test them and put them in place',
  positionals: { synopsis: '<box>...', min: 1, max: Infinity, what: 'one or more box names' },
  options: {
    provider: list('P', 'virtualbox, vmware or qemu (default: every provider of the box whose hypervisor this host has)', providers),
    version: value('V', 'the box version (default: YYYYMMDD.HHMMSS.0, UTC)', newBoxVersion),
    parallel: value('N', 'builds at once (default: from cores and free memory)', wholeNumber),
    timeout: value('S=D,...', 'stage time limits, e.g. build=90m,package=10m,run=3h', stageTimeouts),
    grace: value('D', 'between SIGTERM and SIGKILL of a stopped stage (default 10s)', parseDuration),
    'no-test': flag('do not smoke-test the boxes before putting them in place'),
    'docker-image': value('IMG', 'smoke-test Docker with a registry image (e.g. hello-world) instead of one built in the guest (needs the guest online)', nonEmpty),
    'keep-work': flag("keep Packer's work folders (VM disks) for debugging"),
    'no-apt-cache': flag('do not start the package cache'),
    'apt-cache-port': value('P', "the package cache's port (default 3142, or any free one)", port),
    compression: value('C', "gzip, zstd or xz for the boxes boxsmith packages, every provider's (default: the definition's box.compression)", boxCompression),
    'compression-level': value('N', "the compressor's level (gzip 1-9, zstd 1-19, xz 0-9; default: the definition's box.compression_level, else 6, 3, 6)", compressionLevel),
    'packer-version': value('V', 'render for this Packer version instead of the installed one', (text) => (parsePackerVersion(text), text)),
  },
  run: async ({ options, positionals }) => {
    const requested = options.provider.flat();
    // The host first: a wrong environment variable is said without reading the definitions.
    checkRunEnvironment(options['no-test'] ? ['packer'] : ['packer', 'vagrant']);
    const dirs = await checkedOutputDirectories();
    const { loadDefinition } = await import('../../definitions/load.ts');
    const { buildSummary, planBuilds, runBuilds } = await import('../../build/run.ts');
    const { defaultVersion, packerVersionFor } = await import('../../run-settings.ts');
    const boxes = positionals.map((box) => loadDefinition(box));
    const level = options['compression-level'];
    for (const { box, definition } of level !== undefined ? boxes : []) {
      const compression = options.compression ?? definition.box.compression;
      const problem = compressionLevelProblem(compression, level!);
      const from = options.compression ? 'the --compression given' : `${box}'s box.compression`;
      if (problem) throw new UsageError(`--compression-level: ${problem}; ${compression} is ${from}`, 'build');
    }
    let plan;
    try {
      plan = planBuilds(boxes, requested);
    } catch (error) {
      throw new UsageError((error as Error).message, 'build');
    }
    for (const skipped of plan.skipped) console.log(`skipping ${skipped.box} for ${skipped.provider}: ${skipped.reason}`);
    if (!plan.targets.length) {
      console.error(`boxsmith: nothing to build: ${plan.skipped.map((s) => `${s.provider} (${s.reason})`).join('; ')}`);
      return 1;
    }
    const outcome = await runBuilds({
      targets: plan.targets,
      version: options.version ?? defaultVersion(),
      packer: packerVersionFor(options['packer-version']),
      ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
      timeoutOverrides: options.timeout ?? {},
      ...dirs,
      cacheDir: cacheRoot(),
      keepWork: options['keep-work'],
      ...(options.grace !== undefined ? { graceMs: options.grace } : {}),
      smokeTest: !options['no-test'],
      ...(options['docker-image'] ? { dockerImage: options['docker-image'] } : {}),
      aptCache: !options['no-apt-cache'],
      ...(options.compression ? { compression: options.compression } : {}),
      ...(level !== undefined ? { compressionLevel: level } : {}),
      ...(options['apt-cache-port'] !== undefined ? { aptCachePort: options['apt-cache-port'] } : {}),
    });
    console.log(`\n${buildSummary(outcome.results, plan.skipped)}`);
    if (outcome.interruptExitCode !== null) return outcome.interruptExitCode;
    // A provider asked for by name that cannot be built is a failure; one left out by default is not.
    const requestedButSkipped = requested.length > 0 && plan.skipped.length > 0;
    return outcome.results.every((r) => r.ok) && !requestedButSkipped ? 0 : 1;
  },
});
