// Smoke-test results for people (a short table) and for CI (JUnit XML, one test case a check, a
// failure showing the command, what was expected and what came back).
import { escapeMarkup } from '../markup.ts';
import type { SmokeResult } from './result.ts';

export function junitXml(result: SmokeResult): string {
  const suite = `${result.name} ${result.version} (${result.provider})`;
  const failures = result.checks.filter((c) => !c.passed).length + (result.error ? 1 : 0);
  const total = result.checks.reduce((sum, c) => sum + c.duration_s, 0);
  const cases = result.checks.map((check) => {
    const open = `    <testcase classname="${escapeMarkup(suite)}" name="${escapeMarkup(check.name)}" time="${check.duration_s}">`;
    if (check.passed) return `${open}</testcase>`;
    const detail = `command: ${check.command}\nexpected: ${check.expected}\nactual (exit ${check.exit_code}): ${check.actual}`;
    return `${open}\n      <failure message="${escapeMarkup(`expected ${check.expected}, got ${check.actual.split('\n')[0] ?? ''}`)}">${escapeMarkup(detail)}</failure>\n    </testcase>`;
  });
  if (result.error) {
    cases.push(`    <testcase classname="${escapeMarkup(suite)}" name="box boots with vagrant up" time="0">\n      <error message="${escapeMarkup(result.error.split('\n')[0] ?? '')}">${escapeMarkup(result.error)}</error>\n    </testcase>`);
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${cases.length}" failures="${failures}">`,
    `  <testsuite name="${escapeMarkup(suite)}" tests="${cases.length}" failures="${failures}" time="${total.toFixed(1)}" timestamp="${result.tested_at}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export function resultTable(result: SmokeResult): string {
  const rows = result.checks.map((c) => [c.passed ? 'pass' : 'FAIL', c.name, c.passed ? '' : `expected ${c.expected}; got ${c.actual.split('\n')[0] ?? ''}`]);
  const width = Math.max(5, ...rows.map((r) => r[1]!.length));
  const lines = [`${result.name} ${result.version} (${result.provider}): ${result.passed ? 'passed' : 'FAILED'}`];
  for (const [status, name, detail] of rows) lines.push(`  ${status!.padEnd(4)}  ${name!.padEnd(width)}  ${detail}`.trimEnd());
  if (result.error) lines.push(`  error: ${result.error}`);
  return lines.join('\n');
}
