// `report:merge`: the reports of a night's parts (the CI plan job's cells that are not built, and
// each runner's `nightly --cell BOX:PROVIDER`) joined into the one report a single run would have
// written: the same cells in the same order, the earliest start, the latest finish, and the exit
// code worked out again from the cells. Parts of different versions are not one night: refused.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { displayPath } from '../definitions/errors.ts';
import { nightExitCode, publishPassedCells, sortCells, type PublishCellsOptions } from './cells.ts';
import { REPORT_SCHEMA, type NightlyReport } from './report-model.ts';

export class ReportMergeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportMergeError';
  }
}

/** A part's report.json: in PART_DIR, or in its latest/ (PART_DIR being a run's --report-dir). */
export function readPart(dir: string): NightlyReport {
  const file = [path.join(dir, 'report.json'), path.join(dir, 'latest', 'report.json')].find((candidate) => existsSync(candidate));
  if (!file) throw new ReportMergeError(`${displayPath(dir)} has no report.json (nor latest/report.json): not a nightly's report folder`);
  let report: NightlyReport;
  try {
    report = JSON.parse(readFileSync(file, 'utf8')) as NightlyReport;
  } catch (error) {
    throw new ReportMergeError(`${displayPath(file)}: not JSON (${(error as Error).message})`);
  }
  if (report.schema !== REPORT_SCHEMA) throw new ReportMergeError(`${displayPath(file)}: schema ${JSON.stringify(report.schema)}, not ${REPORT_SCHEMA}`);
  return report;
}

export function mergeReports(parts: { dir: string; report: NightlyReport }[]): NightlyReport {
  if (!parts.length) throw new ReportMergeError('report:merge needs at least one part folder');
  const [first] = parts;
  const other = parts.find((part) => part.report.version !== first!.report.version);
  if (other) {
    throw new ReportMergeError(
      `${displayPath(other.dir)} is of version ${other.report.version}, ${displayPath(first!.dir)} of ${first!.report.version}: the parts of one night share one version (nightly --version)`,
    );
  }
  const seen = new Map<string, string>();
  for (const { dir, report } of parts) {
    for (const cell of report.cells) {
      const key = `${cell.box} ${cell.provider}`;
      if (seen.has(key)) throw new ReportMergeError(`${key} is in two parts: ${displayPath(seen.get(key)!)} and ${displayPath(dir)}`);
      seen.set(key, dir);
    }
  }
  const cells = sortCells(parts.flatMap((part) => part.report.cells));
  const times = (key: 'started_at' | 'finished_at') => parts.map((part) => part.report[key]).sort();
  return { schema: REPORT_SCHEMA, version: first!.report.version, started_at: times('started_at')[0]!, finished_at: times('finished_at').at(-1)!, cells, exit_code: nightExitCode(cells) };
}

/** Publishes the passed cells' boxes (the runners' artifacts, gathered in boxes/) and updates the exit code. */
export async function publishMerged(report: NightlyReport, options: Omit<PublishCellsOptions, 'version'>): Promise<void> {
  await publishPassedCells(report.cells, { ...options, version: report.version });
  report.exit_code = nightExitCode(report.cells);
}
