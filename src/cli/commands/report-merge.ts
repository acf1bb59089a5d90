import { TARGET_SYNTAX } from '../../publish/target.ts';
import path from 'node:path';
import { writableFolder } from '../../environment.ts';
import { PublishUsageError } from '../../publish/errors.ts';
import { HCP_RETIREMENT_NOTE } from '../../publish/retirement.ts';
import { defineCommand, flag, value } from '../spec.ts';
import { invocationDirectory, nonEmpty, publishTarget, wholeNumber } from '../values.ts';

export const reportMerge = defineCommand({
  name: 'report-merge',
  summary: "join the report parts of a fanned-out night (the CI plan job's and each runner's) into the one report a single run writes",
  description: 'PART_DIR: a part\'s report folder (holding report.json, or latest/report.json). With --to, the boxes of the passed cells\n(gathered into boxes/ or BOXSMITH_BOXES from the runners) are published, as `nightly --to` does.\n' +
    `--to vagrant-cloud and hcp: ${HCP_RETIREMENT_NOTE}.`,
  positionals: { synopsis: 'PART_DIR...', min: 1, max: Infinity, what: 'one or more part folders' },
  options: {
    'report-dir': value('DIR', 'where the merged report goes (default: reports/, or BOXSMITH_REPORTS)', nonEmpty),
    to: value('TARGET', `publish the boxes of the passed cells: ${TARGET_SYNTAX}`, publishTarget),
    'dry-run': flag('publishing is a dry run: say what would be sent, change nothing'),
    'no-test': flag('the night ran with --no-test: publish its untested boxes'),
    keep: value('N', 'static and rclone targets: versions the catalog keeps; older ones are deleted', wholeNumber),
  },
  run: async ({ options, positionals }) => {
    if (options.keep !== undefined && options.to?.kind !== 'static' && options.to?.kind !== 'rclone') throw new PublishUsageError('report-merge: --keep applies to a static or rclone --to target only');
    if (options['dry-run'] && !options.to) throw new PublishUsageError('report-merge: --dry-run is a dry run of publishing, so it needs --to');
    const { claimFolder } = await import('../../files/owned-folder.ts');
    const { mergeReports, publishMerged, readPart, ReportMergeError } = await import('../../nightly/merge.ts');
    const { writeNightlyReports } = await import('../../nightly/reports.ts');
    const { claimOutputFolders, outputDirectories, REPORTS_DIR } = await import('../../run-settings.ts');
    const reportDir = writableFolder(options['report-dir'] ? '--report-dir' : 'BOXSMITH_REPORTS', path.resolve(invocationDirectory(), options['report-dir'] ?? REPORTS_DIR));
    let report;
    try {
      report = mergeReports(positionals.map((dir) => path.resolve(invocationDirectory(), dir)).map((dir) => ({ dir, report: readPart(dir) })));
    } catch (error) {
      if (!(error instanceof ReportMergeError)) throw error;
      console.error(`boxsmith: ${error.message}`);
      return 1;
    }
    if (reportDir === REPORTS_DIR) claimOutputFolders({ reports: reportDir });
    else claimFolder({ dir: reportDir, kind: 'reports', namedBy: '--report-dir' });
    if (options.to) {
      await publishMerged(report, {
        target: options.to,
        boxesDir: outputDirectories().boxesDir,
        dryRun: options['dry-run'],
        allowUntested: options['no-test'],
        ...(options.keep !== undefined ? { keep: options.keep } : {}),
      });
    }
    const dir = await writeNightlyReports(report, reportDir);
    for (const cell of report.cells) console.log(`${cell.status.padEnd(9)} ${cell.box} ${cell.provider}${cell.reason ? `: ${cell.reason}` : ''}`);
    console.log(`report: ${dir}`);
    return report.exit_code;
  },
});
