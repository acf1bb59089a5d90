// The nightly report as a short Markdown summary (for $GITHUB_STEP_SUMMARY or a chat message): the
// counts, the box x provider matrix and the failures. The details are in report.html.
import { escapeMarkup } from '../markup.ts';
import { boxSizeTable, cellOutcome, cellSeconds, formatBytes, formatSeconds, reportMatrix, summaryLine } from './report-matrix.ts';
import type { CellReport, NightlyReport } from './report-model.ts';

/** Text from data inside a Markdown table: no HTML (GitHub renders it), no cell breaks. */
function text(value: string): string {
  return escapeMarkup(value).replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function cellText(cell: CellReport | undefined): string {
  if (!cell) return '—';
  const seconds = cellSeconds(cell);
  const details = [seconds !== undefined ? formatSeconds(seconds) : '', cell.artifact ? formatBytes(cell.artifact.size) : ''].filter(Boolean).join(', ');
  const outcome = cell.status === 'failed' ? `**${text(cellOutcome(cell))}**` : text(cellOutcome(cell));
  return details && cell.status !== 'skipped' && cell.status !== 'unchanged' ? `${outcome} (${details})` : outcome;
}

export function nightlyMarkdown(report: NightlyReport): string {
  const matrix = reportMatrix(report);
  const lines = [
    `# boxsmith nightly ${text(report.version)}`,
    '',
    `${text(report.started_at)} to ${text(report.finished_at)}, exit code ${report.exit_code}: ${summaryLine(matrix.counts)}`,
    '',
    `| box | ${matrix.providers.join(' | ')} |`,
    `| --- |${matrix.providers.map(() => ' --- |').join('')}`,
    ...matrix.boxes.map((box) => `| ${text(box)} | ${matrix.providers.map((provider) => cellText(matrix.cell(box, provider))).join(' | ')} |`),
  ];
  const sizes = boxSizeTable(report);
  if (sizes) {
    lines.push('', '## Box sizes', '', `| ${sizes.head.map(text).join(' | ')} |`, `|${sizes.head.map(() => ' --- |').join('')}`);
    for (const row of sizes.rows) lines.push(`| ${row.map(text).join(' | ')} |`);
  }
  const failed = report.cells.filter((cell) => cell.status === 'failed');
  if (failed.length) {
    lines.push('', '## Failed', '');
    for (const cell of failed) lines.push(`- ${text(cell.box)} on ${cell.provider}: ${text(cellOutcome(cell))}${cell.logs ? ` (logs: ${text(cell.logs)})` : ''}`);
  }
  const publishFailures = report.cells.filter((cell) => cell.published && !cell.published.ok);
  if (publishFailures.length) {
    lines.push('', '## Publish failures', '');
    for (const cell of publishFailures) lines.push(`- ${text(cell.name)} to ${text(cell.published!.target)}: ${text(cell.published!.error ?? 'failed')}`);
  }
  return `${lines.join('\n')}\n`;
}
