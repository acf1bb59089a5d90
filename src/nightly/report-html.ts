// The nightly report as one self-contained HTML page: the box x provider matrix, the last nights
// as small inline SVG charts, then the details of each cell. Nothing is loaded from anywhere (the
// page's own Content-Security-Policy forbids it), so it opens from disk and from a CI artifact;
// every text from the data is escaped, and no script runs.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { escapeMarkup as h } from '../markup.ts';
import { cellHistories, type CellHistory } from './report-history.ts';
import { boxSizeTable, cellId, cellOutcome, cellReason, cellSeconds, formatBytes, formatSeconds, reportMatrix, STATUSES, summaryLine } from './report-matrix.ts';
import type { CellReport, NightlyReport } from './report-model.ts';

export interface HtmlReportOptions {
  /** reports/: log folders inside it are linked by relative paths (which work in reports/latest/ too). */
  reportsRoot: string;
  /** The nights to chart, oldest first, tonight last (see readReportHistory). */
  nights: NightlyReport[];
}

/** Nothing but the page's own inline styles and data: images; no script, no request anywhere. */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { margin-bottom: 0.3em; } code, pre { font: 12px/1.4 ui-monospace, monospace; } pre { white-space: pre-wrap; margin: 0.2em 0; }
table { border-collapse: collapse; } th, td { padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
.facts th, .stages th, .packages th, .archive th { font-weight: 600; color: #555; }
.stages td, .packages td, .archive td, .facts td, .facts th { border-top: 1px solid #eee; }
.matrix td, .matrix th { border: 1px solid #ccc; } .matrix td { min-width: 11em; }
.matrix a { color: inherit; text-decoration: none; display: block; }
.cell .why { font-size: 0.9em; } .meta { color: #555; font-size: 0.9em; }
.facts, .stages { margin: 0.6em 0; }
.passed { background: #e3f6e5; } .failed { background: #fde2e1; } .skipped { background: #f0f0f0; } .unchanged { background: #e4eefb; }
.none { color: #999; }
.badge { border-radius: 0.8em; padding: 0.05em 0.6em; font-weight: 600; font-size: 0.9em; }
.badge.passed { color: #17692a; } .badge.failed { color: #a3140e; } .badge.skipped { color: #555; } .badge.unchanged { color: #1a4f9c; }
.detail { border-left: 4px solid #ccc; padding-left: 1em; margin: 1.2em 0; }
.detail.passed { border-color: #3aa655; background: none; } .detail.failed { border-color: #d93025; background: none; }
.detail.skipped { border-color: #aaa; background: none; } .detail.unchanged { border-color: #4a7fd4; background: none; }
details { margin: 0.2em 0; } summary { cursor: pointer; }
.check.failed { background: #fde2e1; } .check.passed { background: none; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; border: 1px solid #ddd; padding: 0.5em; }
figcaption { font-weight: 600; margin-bottom: 0.3em; }
svg.chart { display: block; } svg.chart text { font: 11px system-ui, sans-serif; fill: #444; }
svg.chart polyline { fill: none; stroke: #4a7fd4; stroke-width: 1.5; } svg.chart circle { fill: #4a7fd4; } svg.chart circle.failed { fill: #d93025; }
footer { margin-top: 2em; color: #777; font-size: 0.9em; }
`;

export function nightlyHtml(report: NightlyReport, options: HtmlReportOptions): string {
  const matrix = reportMatrix(report);
  const reportDir = path.join(options.reportsRoot, report.version);
  const index = new Map(report.cells.map((cell, i) => [cell, i]));
  const took = Date.parse(report.finished_at) - Date.parse(report.started_at);

  const head = matrix.providers.map((provider) => `<th scope="col">${h(provider)}</th>`).join('');
  const rows = matrix.boxes.map((box) => {
    const tds = matrix.providers.map((provider) => {
      const cell = matrix.cell(box, provider);
      if (!cell) return '<td class="cell none">—</td>';
      const seconds = cellSeconds(cell);
      const why = cellReason(cell);
      const meta = [seconds !== undefined ? formatSeconds(seconds) : '', cell.artifact ? formatBytes(cell.artifact.size) : ''].filter(Boolean).join(' · ');
      return `<td class="cell ${cell.status}" data-cell="${h(cellId(cell))}"><a href="#cell-${index.get(cell)}"><span class="badge ${cell.status}">${cell.status}</span>`
        + `${why ? `<br><span class="why">${h(why)}</span>` : ''}${meta ? `<br><span class="meta">${h(meta)}</span>` : ''}</a></td>`;
    });
    return `<tr><th scope="row">${h(box)}</th>${tds.join('')}</tr>`;
  });

  const histories = cellHistories(options.nights);
  const versions = options.nights.map((night) => night.version);
  const charts = histories.length
    ? `<div class="charts">${histories.map((history) => historyFigure(history, versions)).join('\n')}</div>`
    : '<p>No box was built in these nights.</p>';

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>boxsmith nightly ${h(report.version)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>boxsmith nightly ${h(report.version)}</h1>
<p class="times">started ${timeElement(report.started_at)}, finished ${timeElement(report.finished_at)}${Number.isFinite(took) ? `, took ${formatSeconds(took / 1000)}` : ''} · exit code ${report.exit_code}</p>
<p class="summary" id="summary">${STATUSES.map((status) => `<span class="badge ${status}">${matrix.counts[status]} ${status}</span>`).join(', ')}</p>
</header>
<main>
<h2>Boxes and providers</h2>
<table class="matrix" aria-label="${h(summaryLine(matrix.counts))}">
<thead><tr><th scope="col">box</th>${head}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
${boxSizesHtml(report)}<h2>The last ${options.nights.length === 1 ? 'night' : `${options.nights.length} nights`}</h2>
${charts}
<h2>Details</h2>
${report.cells.map((cell, i) => cellSection(cell, i, reportDir, options.reportsRoot)).join('\n')}
</main>
<footer>${h(report.schema)} · the same report as data: <a href="report.json">report.json</a>, for CI: <a href="report.xml">report.xml</a></footer>
</body>
</html>
`;
}

/** The guest's files against each box (boxSizeTable), or nothing when no cell has them. */
function boxSizesHtml(report: NightlyReport): string {
  const sizes = boxSizeTable(report);
  if (!sizes) return '';
  return `<h2>Box sizes</h2>
<table class="sizes">
<thead><tr>${sizes.head.map((name) => `<th scope="col">${h(name)}</th>`).join('')}</tr></thead>
<tbody>
${sizes.rows.map((row) => `<tr>${row.map((value) => `<td>${h(value)}</td>`).join('')}</tr>`).join('\n')}
</tbody>
</table>
`;
}

function timeElement(iso: string): string {
  const date = new Date(iso);
  const shown = Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  return `<time datetime="${h(iso)}">${h(shown)}</time>`;
}

function cellSection(cell: CellReport, i: number, reportDir: string, reportsRoot: string): string {
  const facts: [string, string][] = [['box', h(`${cell.name}${cell.box_version ? ` ${cell.box_version}` : ''}`)]];
  if (cell.artifact) {
    facts.push(['size', h(formatBytes(cell.artifact.size))], ['file', `<code>${h(cell.artifact.file)}</code>`], ['sha256', `<code>${h(cell.artifact.sha256)}</code>`]);
  }
  if (cell.kernel) facts.push(['kernel', h(cell.kernel)]);
  if (cell.docker) facts.push(['Docker', h(cell.docker)]);
  if (cell.logs) facts.push(['logs', `<a class="logs" href="${h(logHref(cell.logs, reportDir, reportsRoot))}">${h(cell.logs)}</a>`]);
  if (cell.published) facts.push(['published', h(publishedText(cell.published))]);
  if (cell.input_hash) facts.push(['input hash', `<code>${h(cell.input_hash)}</code>`]);
  if (cell.changed_inputs?.length) facts.push(['changed inputs', cell.changed_inputs.map((input) => h(input)).join(', ')]);
  if (cell.runner) facts.push(['runner', h(cell.runner)]);

  const parts = [
    `<section class="detail ${cell.status}" id="cell-${i}" data-cell="${h(cellId(cell))}">`,
    `<h3>${h(cell.box)} · ${h(cell.provider)} <span class="badge ${cell.status}">${cell.status}</span></h3>`,
    `<p class="outcome">${h(cellOutcome(cell))}</p>`,
  ];
  if (cell.status === 'failed' && cell.reason && cell.reason.includes('\n')) parts.push(`<pre class="error">${h(cell.reason)}</pre>`);
  parts.push(`<table class="facts">${facts.map(([name, value]) => `<tr><th scope="row">${name}</th><td>${value}</td></tr>`).join('')}</table>`);
  if (cell.stages.length) {
    parts.push('<table class="stages"><thead><tr><th>stage</th><th>status</th><th>time</th><th>error</th></tr></thead><tbody>'
      + cell.stages.map((stage) => `<tr class="${stage.status}"><td>${h(stage.name)}</td><td>${stage.status}</td><td>${stage.seconds !== undefined ? formatSeconds(stage.seconds) : ''}</td><td>${h(stage.error ?? '')}</td></tr>`).join('')
      + '</tbody></table>');
  }
  if (cell.smoke) {
    const passed = cell.smoke.checks.filter((check) => check.passed).length;
    parts.push(`<h4>Smoke test ${cell.smoke.passed ? 'passed' : 'failed'}: ${passed} of ${cell.smoke.checks.length} checks passed</h4><div class="checks">`
      + cell.smoke.checks.map((check) => `<details class="check ${check.passed ? 'passed' : 'failed'}"${check.passed ? '' : ' open'}><summary>${check.passed ? '✓' : '✗'} ${h(check.name)} <span class="meta">${formatSeconds(check.duration_s)}</span></summary>`
        + `<table class="facts"><tr><th scope="row">expected</th><td><pre>${h(check.expected ?? '')}</pre></td></tr><tr><th scope="row">actual</th><td><pre>${h(check.actual ?? '')}</pre></td></tr></table></details>`).join('')
      + '</div>');
  }
  if (cell.package_changes) {
    const { since, changes } = cell.package_changes;
    parts.push(changes.length
      ? `<details class="packages"><summary>${changes.length} package${changes.length === 1 ? '' : 's'} changed since ${h(since)}</summary><table class="packages"><thead><tr><th>package</th><th>from</th><th>to</th></tr></thead><tbody>`
        + changes.map((change) => `<tr><td>${h(change.name)}</td><td>${change.from === undefined ? '<em>added</em>' : h(change.from)}</td><td>${change.to === undefined ? '<em>removed</em>' : h(change.to)}</td></tr>`).join('')
        + '</tbody></table></details>'
      : `<p class="packages">No package changed since ${h(since)}.</p>`);
  }
  if (cell.archive?.length) {
    parts.push(`<details class="archive"><summary>Built against ${cell.archive.length} archive suite${cell.archive.length === 1 ? '' : 's'}</summary><table class="archive"><thead><tr><th>suite</th><th>InRelease date</th><th>sha256</th></tr></thead><tbody>`
      + cell.archive.map((suite) => `<tr><td>${h(suite.suite)}</td><td>${h(suite.date)}</td><td><code>${h(suite.sha256)}</code></td></tr>`).join('')
      + '</tbody></table></details>');
  }
  parts.push('</section>');
  return parts.join('\n');
}

function publishedText(published: NonNullable<CellReport['published']>): string {
  if (published.dry_run) return `dry run to ${published.target}`;
  if (!published.ok) return `FAILED to ${published.target}${published.error ? `: ${published.error}` : ''}`;
  return `to ${published.target}${published.released ? ', released' : ', not released'}`;
}

/**
 * A link to a log folder: relative when it is inside reports/ (or given relative to the report
 * folder), so it works from reports/<version>/ and reports/latest/ alike and in a CI artifact;
 * else a file: URL of the path as given.
 */
export function logHref(logs: string, reportDir: string, reportsRoot: string): string {
  const relative = (target: string) => target.split(path.sep).map(encodeURIComponent).join('/') || '.';
  if (!path.isAbsolute(logs)) return relative(logs);
  const inReports = path.relative(path.resolve(reportsRoot), logs);
  if (!inReports.startsWith('..') && !path.isAbsolute(inReports)) return relative(path.relative(path.resolve(reportDir), logs));
  return pathToFileURL(logs).href;
}

const CHART = { width: 260, height: 72, top: 18, bottom: 6, side: 6 };

function historyFigure(history: CellHistory, versions: string[]): string {
  const seconds = history.points.map((point) => point?.seconds);
  const sizes = history.points.map((point) => point?.size);
  const failed = history.points.map((point) => point?.status === 'failed');
  return `<figure class="history" data-cell="${h(cellId(history))}"><figcaption>${h(history.box)} · ${h(history.provider)}</figcaption>`
    + chart('build time', seconds, failed, versions, formatSeconds)
    + chart('box size', sizes, failed, versions, formatBytes)
    + '</figure>';
}

/** A small line chart of one value per night; gaps where a night has none (not built, or not in its report). */
function chart(label: string, values: (number | undefined)[], failed: boolean[], versions: string[], format: (value: number) => string): string {
  const { width, height, top, bottom, side } = CHART;
  const known = values.filter((value): value is number => value !== undefined);
  const max = Math.max(...known, 0);
  const x = (i: number) => (values.length === 1 ? width / 2 : side + (i * (width - 2 * side)) / (values.length - 1));
  const y = (value: number) => height - bottom - (max > 0 ? (value / max) * (height - top - bottom) : 0);
  const lines: string[] = [];
  let run: string[] = [];
  values.forEach((value, i) => {
    if (value !== undefined) run.push(`${x(i).toFixed(1)},${y(value).toFixed(1)}`);
    if ((value === undefined || i === values.length - 1) && run.length) {
      lines.push(`<polyline points="${run.join(' ')}"/>`);
      run = [];
    }
  });
  const dots = values.map((value, i) => (value === undefined ? '' : `<circle class="${failed[i] ? 'failed' : 'passed'}" cx="${x(i).toFixed(1)}" cy="${y(value).toFixed(1)}" r="2.5"><title>${h(versions[i] ?? '')}: ${h(format(value))}</title></circle>`)).join('');
  const last = [...values].reverse().find((value) => value !== undefined);
  const caption = last === undefined ? `${label}: no data` : `${label}: ${format(last)} (max ${format(max)})`;
  return `<svg class="chart" data-series="${h(label)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${h(caption)}">`
    + `<text x="${side}" y="12">${h(caption)}</text><line x1="${side}" y1="${height - bottom}" x2="${width - side}" y2="${height - bottom}" stroke="#ccc"/>${lines.join('')}${dots}</svg>`;
}
