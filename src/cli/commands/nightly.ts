import { TARGET_SYNTAX } from '../../publish/target.ts';
import path from 'node:path';
import { writableFolder } from '../../environment.ts';
import { PROVIDERS, type Provider } from '../../definitions/names.ts';
import { PublishUsageError } from '../../publish/errors.ts';
import { HCP_RETIREMENT_NOTE } from '../../publish/retirement.ts';
import { UsageError } from '../errors.ts';
import { defineCommand, flag, list, value } from '../spec.ts';
import { newBoxVersion, nonEmpty, publishTarget, stageTimeouts, wholeNumber } from '../values.ts';
import { checkedOutputDirectories, checkRunEnvironment } from './build.ts';

/** `debian-12:qemu`: one box x provider. */
function cell(text: string): { box: string; provider: Provider } {
  const [box, provider, ...rest] = text.split(':');
  if (!box || !provider || rest.length || !(PROVIDERS as readonly string[]).includes(provider)) throw new Error(`takes BOX:PROVIDER (provider one of ${PROVIDERS.join(', ')}), not "${text}"`);
  return { box, provider: provider as Provider };
}

export const nightly = defineCommand({
  name: 'nightly',
  summary: 'build, smoke-test and publish every box x provider whose inputs changed since its last good build; write the night\'s report into reports/<version>/',
  description:
    'A cell is skipped where this host lacks its hypervisor, unchanged (nothing boots) where its input hash equals its last good build\'s\n' +
    '(boxes/, or what a static --to target holds), else built. One nightly at a time per host and target.\n' +
    `--to vagrant-cloud and hcp: ${HCP_RETIREMENT_NOTE}.`,
  positionals: { synopsis: '', min: 0, max: 0, what: 'no box names (use --box B)' },
  options: {
    box: list('B', 'plan this box (default: every box)', nonEmpty),
    cell: list('BOX:PROVIDER', 'plan only this box x provider (one CI runner\'s share of a night)', cell),
    to: value('TARGET', `publish the boxes that passed: ${TARGET_SYNTAX}`, publishTarget),
    version: value('V', 'tonight\'s version (a fanned-out night passes the plan\'s to every runner; default: YYYYMMDD.HHMMSS.0, UTC)', newBoxVersion),
    force: flag('build every cell this host can build, changed or not'),
    plan: flag('print what would be built and why, one line per cell, and build nothing'),
    json: flag('with --plan: the plan as the matrix a CI engine fans out (include: the cells to build, with runs_on labels; unchanged; skipped; version)'),
    'for-runners': flag('with --plan: a provider whose hypervisor this host lacks is planned for its runner (which decides), not skipped'),
    'dry-run': flag('publishing only is a dry run (say what would be sent, change nothing); the builds still run: --plan builds nothing'),
    'no-test': flag('do not smoke-test; the boxes are then published untested (for trying a target out)'),
    'no-apt-cache': flag('do not start the package cache'),
    parallel: value('N', 'builds at once (default: from cores and free memory)', wholeNumber),
    timeout: value('S=D,...', 'stage time limits, e.g. build=90m,package=10m,run=3h', stageTimeouts),
    keep: value('N', 'static and rclone targets: versions the catalog keeps; older ones are deleted', wholeNumber),
    'report-dir': value('DIR', 'where the report goes (default: reports/, or BOXSMITH_REPORTS); with --plan, given: the cells not built, as a part for report:merge', nonEmpty),
  },
  run: async ({ options }) => {
    if (options.keep !== undefined && options.to?.kind !== 'static' && options.to?.kind !== 'rclone') throw new PublishUsageError('nightly: --keep applies to a static or rclone --to target only');
    if (options['dry-run'] && !options.to) throw new PublishUsageError('nightly: --dry-run is a dry run of publishing, so it needs --to');
    if ((options.json || options['for-runners']) && !options.plan) throw new UsageError('nightly: --json and --for-runners go with --plan', 'nightly');
    checkRunEnvironment(options.plan || options['no-test'] ? ['packer'] : ['packer', 'vagrant']);
    const { loadDefinition } = await import('../../definitions/load.ts');
    const { runNightly } = await import('../../nightly/run.ts');
    const { REPORTS_DIR } = await import('../../run-settings.ts');
    const dirs = await checkedOutputDirectories();
    const reportDir = writableFolder(options['report-dir'] ? '--report-dir' : 'BOXSMITH_REPORTS', path.resolve(options['report-dir'] ?? REPORTS_DIR));
    for (const box of options.box) loadDefinition(box);
    for (const { box, provider } of options.cell) {
      const { definition } = loadDefinition(box);
      if (!definition.providers.includes(provider)) throw new UsageError(`nightly: --cell ${box}:${provider}: ${box} has no ${provider} build (its providers: ${definition.providers.join(', ')})`, 'nightly');
    }
    return runNightly({
      boxes: options.box,
      cells: options.cell,
      ...(options.to ? { target: options.to } : {}),
      publishDryRun: options['dry-run'],
      ...(options.version ? { version: options.version } : {}),
      force: options.force,
      ...(options.plan ? { plan: { json: options.json, forRunners: options['for-runners'], ...(options['report-dir'] ? { partDir: reportDir } : {}) } } : {}),
      smokeTest: !options['no-test'],
      aptCache: !options['no-apt-cache'],
      ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
      timeoutOverrides: options.timeout ?? {},
      ...(options.keep !== undefined ? { keep: options.keep } : {}),
      reportDir,
      dirs,
    });
  },
});
