// Writes a nightly report into reports/<version>/ and reports/latest/: the data (report.json) and
// its renderings (report.xml for CI test tabs, report.html for people, report.md for a CI summary).
import { cpSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-files.ts';
import { readReportHistory } from './report-history.ts';
import { nightlyHtml } from './report-html.ts';
import { nightlyJunitXml } from './report-junit.ts';
import { nightlyMarkdown } from './report-markdown.ts';
import type { NightlyReport } from './report-model.ts';

/** Writes the report's files; returns reports/<version>/. */
export async function writeNightlyReports(report: NightlyReport, reportsRoot: string): Promise<string> {
  const dir = path.join(reportsRoot, report.version);
  mkdirSync(dir, { recursive: true });
  const history = readReportHistory(reportsRoot, report);
  for (const { file, reason } of history.unreadable) console.warn(`report history: left out ${file}: ${reason}`);
  await writeFileAtomic(path.join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(path.join(dir, 'report.xml'), nightlyJunitXml(report));
  await writeFileAtomic(path.join(dir, 'report.html'), nightlyHtml(report, { reportsRoot, nights: history.nights }));
  await writeFileAtomic(path.join(dir, 'report.md'), nightlyMarkdown(report));
  // latest/ is replaced by one rename, so a reader sees one night's files, never a mix.
  const next = path.join(reportsRoot, `.latest-${process.pid}`);
  rmSync(next, { recursive: true, force: true });
  cpSync(dir, next, { recursive: true });
  rmSync(path.join(reportsRoot, 'latest'), { recursive: true, force: true });
  renameSync(next, path.join(reportsRoot, 'latest'));
  return dir;
}
