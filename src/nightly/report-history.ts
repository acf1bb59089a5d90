// The last nights as the HTML report charts them: tonight's report and the report.json of earlier
// versions in reports/<version>/, in version order, with the build time and box size of each
// box x provider per night. An unreadable earlier report is left out and named, never fatal.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Provider } from '../definitions/schema.ts';
import { compareVersions, isBoxVersion } from '../store/box-store.ts';
import { cellId, cellSeconds } from './report-matrix.ts';
import { REPORT_SCHEMA, type CellStatus, type NightlyReport } from './report-model.ts';

export const HISTORY_NIGHTS = 30;

export interface ReportHistory {
  /** Oldest first, tonight last; at most HISTORY_NIGHTS. */
  nights: NightlyReport[];
  /** Earlier report files that could not be read, with why. */
  unreadable: { file: string; reason: string }[];
}

/** One box x provider over the nights: `points[i]` belongs to `nights[i]` (undefined: not in that night's report). */
export interface CellHistory {
  box: string;
  provider: Provider;
  points: ({ status: CellStatus; seconds?: number; size?: number } | undefined)[];
}

export function readReportHistory(reportsRoot: string, tonight: NightlyReport, nights = HISTORY_NIGHTS): ReportHistory {
  const earlier: NightlyReport[] = [];
  const unreadable: ReportHistory['unreadable'] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(reportsRoot, { withFileTypes: true }).filter((entry) => entry.isDirectory() && isBoxVersion(entry.name)).map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') unreadable.push({ file: reportsRoot, reason: (error as Error).message });
  }
  for (const version of entries) {
    if (version === tonight.version) continue;
    const file = path.join(reportsRoot, version, 'report.json');
    try {
      const report = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      const problem = reportProblem(report, version);
      if (problem) unreadable.push({ file, reason: problem });
      else earlier.push(report as NightlyReport);
    } catch (error) {
      // A folder without a report (a night that died early) is no history, not a fault.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') unreadable.push({ file, reason: (error as Error).message });
    }
  }
  earlier.sort((a, b) => compareVersions(a.version, b.version));
  return { nights: [...earlier.filter((report) => compareVersions(report.version, tonight.version) < 0), tonight].slice(-nights), unreadable };
}

/** Why a parsed report.json is not one this renderer can chart, or undefined. */
function reportProblem(report: unknown, folder: string): string | undefined {
  if (typeof report !== 'object' || report === null) return 'not a JSON object';
  const { schema, version, cells } = report as Record<string, unknown>;
  if (schema !== REPORT_SCHEMA) return `schema is ${JSON.stringify(schema)}, not ${REPORT_SCHEMA}`;
  if (version !== folder) return `version ${JSON.stringify(version)} does not match its folder ${folder}`;
  if (!Array.isArray(cells)) return 'cells is not a list';
  const bad = cells.findIndex((cell) => typeof cell?.box !== 'string' || typeof cell?.provider !== 'string' || typeof cell?.status !== 'string' || !Array.isArray(cell?.stages));
  return bad >= 0 ? `cells[${bad}] lacks box, provider, status or stages` : undefined;
}

/** Every box x provider of the nights that was built at least once, sorted by box then provider. */
export function cellHistories(nights: NightlyReport[]): CellHistory[] {
  const keys = new Map<string, { box: string; provider: Provider }>();
  for (const night of nights) for (const cell of night.cells) keys.set(cellId(cell), { box: cell.box, provider: cell.provider });
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const sorted = [...keys.entries()].sort(([, a], [, b]) => order(a.box, b.box) || order(a.provider, b.provider));
  const histories = sorted.map(([key, { box, provider }]) => ({
    box,
    provider,
    points: nights.map((night) => {
      const cell = night.cells.find((c) => cellId(c) === key);
      if (!cell) return undefined;
      const seconds = cell.status === 'passed' || cell.status === 'failed' ? cellSeconds(cell) : undefined;
      return { status: cell.status, ...(seconds !== undefined ? { seconds } : {}), ...(cell.artifact ? { size: cell.artifact.size } : {}) };
    }),
  }));
  return histories.filter((history) => history.points.some((point) => point?.seconds !== undefined || point?.size !== undefined));
}
