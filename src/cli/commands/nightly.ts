import path from 'node:path';
import { writableFolder } from '../../environment.ts';
import { PublishUsageError } from '../../publish/errors.ts';
import { defineCommand, flag, list, value } from '../spec.ts';
import { nonEmpty, publishTarget, stageTimeouts, wholeNumber } from '../values.ts';
import { checkedOutputDirectories, checkRunEnvironment } from './build.ts';

export const nightly = defineCommand({
  name: 'nightly',
  summary: 'build and smoke-test every box this host can build, publish those that passed, and write a report into reports/',
  positionals: { synopsis: '', min: 0, max: 0, what: 'no box names (use --box B)' },
  options: {
    box: list('B', 'build this box (default: every box)', nonEmpty),
    to: value('TARGET', 'publish the boxes that passed: static:DIR[,base-url=URL], vagrant-cloud[:OWNER] or hcp[:REGISTRY]', publishTarget),
    'dry-run': flag('publish as a dry run: say what would be sent, change nothing'),
    parallel: value('N', 'builds at once (default: from cores and free memory)', wholeNumber),
    timeout: value('S=D,...', 'stage time limits, e.g. build=90m,package=10m,run=3h', stageTimeouts),
    keep: value('N', 'static targets: versions the catalog keeps; older ones are deleted', wholeNumber),
    'report-dir': value('DIR', 'where the report goes (default: reports/, or BOXSMITH_REPORTS)', nonEmpty),
  },
  run: async ({ options }) => {
    if (options.keep !== undefined && options.to?.kind !== 'static') throw new PublishUsageError('nightly: --keep applies to a static --to target only');
    if (options['dry-run'] && !options.to) throw new PublishUsageError('nightly: --dry-run is a dry run of publishing, so it needs --to');
    checkRunEnvironment(['packer', 'vagrant']);
    const { loadDefinition } = await import('../../definitions/load.ts');
    const { runNightly } = await import('../../nightly.ts');
    const { REPORTS_DIR } = await import('../../run-settings.ts');
    const dirs = await checkedOutputDirectories();
    const reportDir = writableFolder(options['report-dir'] ? '--report-dir' : 'BOXSMITH_REPORTS', path.resolve(options['report-dir'] ?? REPORTS_DIR));
    for (const box of options.box) loadDefinition(box);
    return runNightly({
      boxes: options.box,
      ...(options.to ? { target: options.to } : {}),
      dryRun: options['dry-run'],
      ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
      timeoutOverrides: options.timeout ?? {},
      ...(options.keep !== undefined ? { keep: options.keep } : {}),
      reportDir,
      dirs,
    });
  },
});
