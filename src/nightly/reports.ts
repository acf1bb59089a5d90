// Writes a nightly report into reports/<version>/ and reports/latest/.
// (First cut: JSON only; the JUnit XML and HTML renderings join it here.)
import { cpSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-files.ts';
import type { NightlyReport } from './report-model.ts';

/** Writes the report's files; returns reports/<version>/. */
export async function writeNightlyReports(report: NightlyReport, reportsRoot: string): Promise<string> {
  const dir = path.join(reportsRoot, report.version);
  mkdirSync(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  // latest/ is replaced by one rename, so a reader sees one night's files, never a mix.
  const next = path.join(reportsRoot, `.latest-${process.pid}`);
  rmSync(next, { recursive: true, force: true });
  cpSync(dir, next, { recursive: true });
  rmSync(path.join(reportsRoot, 'latest'), { recursive: true, force: true });
  renameSync(next, path.join(reportsRoot, 'latest'));
  return dir;
}
