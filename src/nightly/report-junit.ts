// The nightly report as JUnit XML, for CI test tabs: one test suite per box x provider (class name
// `debian-12.qemu`), one test case per stage and per smoke check (`smoke: <check>`). A cell that was
// not built (skipped, unchanged) shows as skipped test cases with its reason, so the tab says why.
import { escapeMarkup } from '../markup.ts';
import { cellId, cellOutcome, cellSeconds, firstLine } from './report-matrix.ts';
import type { CellReport, NightlyReport } from './report-model.ts';

interface TestCase {
  name: string;
  seconds?: number;
  failure?: { message: string; detail: string };
  skipped?: string;
}

export function nightlyJunitXml(report: NightlyReport): string {
  const suites = report.cells.map((cell) => ({ cell, cases: testCases(cell) }));
  const all = suites.flatMap((suite) => suite.cases);
  const timestamp = junitTimestamp(report.started_at);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${escapeMarkup(`boxsmith nightly ${report.version}`)}" ${counts(all, suites.reduce((sum, { cell }) => sum + (cellSeconds(cell) ?? 0), 0))}>`,
  ];
  for (const { cell, cases } of suites) {
    const attributes = [`name="${escapeMarkup(cellId(cell))}"`, counts(cases, cellSeconds(cell) ?? 0)];
    if (timestamp) attributes.push(`timestamp="${timestamp}"`);
    if (cell.runner) attributes.push(`hostname="${escapeMarkup(cell.runner)}"`);
    lines.push(`  <testsuite ${attributes.join(' ')}>`);
    for (const testCase of cases) lines.push(testCaseXml(cellId(cell), testCase));
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>', '');
  return lines.join('\n');
}

function testCases(cell: CellReport): TestCase[] {
  const built = cell.status === 'passed' || cell.status === 'failed';
  // The message of a not-built cell's test cases: its reason, or "unchanged since <version>".
  const notBuiltReason = cell.status === 'skipped' ? firstLine(cell.reason ?? 'skipped') : cellOutcome(cell);
  const failedStage = cell.stages.find((stage) => stage.status === 'failed');
  const logs = cell.logs ? `\nlogs: ${cell.logs}` : '';
  const cases: TestCase[] = cell.stages.map((stage) => {
    const testCase: TestCase = { name: stage.name, ...(stage.seconds !== undefined ? { seconds: stage.seconds } : {}) };
    if (stage.status === 'failed') {
      const error = stage.error ?? cell.reason ?? `${stage.name} failed`;
      testCase.failure = { message: firstLine(error), detail: `${error}${logs}` };
    } else if (stage.status === 'skipped') {
      testCase.skipped = built ? (failedStage ? `not run: ${failedStage.name} failed` : 'not run') : notBuiltReason;
    }
    return testCase;
  });
  if (!built && cases.length === 0) cases.push({ name: 'build', skipped: notBuiltReason });
  for (const check of cell.smoke?.checks ?? []) {
    const testCase: TestCase = { name: `smoke: ${check.name}`, seconds: check.duration_s };
    if (!check.passed) {
      testCase.failure = {
        message: `expected ${check.expected ?? '?'}, got ${firstLine(check.actual ?? '')}`,
        detail: `expected: ${check.expected ?? ''}\nactual: ${check.actual ?? ''}${logs}`,
      };
    }
    cases.push(testCase);
  }
  // A failed cell always shows a failure, even when no stage or check names it.
  if (cell.status === 'failed' && !cases.some((testCase) => testCase.failure)) {
    const error = cell.reason ?? 'failed';
    cases.push({ name: 'nightly', failure: { message: firstLine(error), detail: `${error}${logs}` } });
  }
  return cases;
}

function testCaseXml(classname: string, testCase: TestCase): string {
  const time = testCase.seconds !== undefined ? ` time="${testCase.seconds}"` : '';
  const open = `    <testcase classname="${escapeMarkup(classname)}" name="${escapeMarkup(testCase.name)}"${time}>`;
  if (testCase.failure) {
    return `${open}\n      <failure message="${escapeMarkup(testCase.failure.message)}">${escapeMarkup(testCase.failure.detail)}</failure>\n    </testcase>`;
  }
  if (testCase.skipped !== undefined) return `${open}\n      <skipped message="${escapeMarkup(testCase.skipped)}"/>\n    </testcase>`;
  return `${open}</testcase>`;
}

/** The count attributes; `seconds` is the stages' time (a smoke check's time is inside its stage's). */
function counts(cases: TestCase[], seconds: number): string {
  const failures = cases.filter((testCase) => testCase.failure).length;
  const skipped = cases.filter((testCase) => testCase.skipped !== undefined).length;
  return `tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${Number(seconds.toFixed(3))}"`;
}

/** The JUnit schema's timestamp: ISO 8601 without a zone (here UTC), or undefined for a date it cannot read. */
function junitTimestamp(iso: string): string | undefined {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString().slice(0, 19);
}
