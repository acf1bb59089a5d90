// The nightly report's files, made from hand-made reports with a cell of every status: JUnit XML
// read back by a real JUnit consumer (Debian's python3-junitparser), the HTML page's matrix,
// links and escaping, the Markdown summary, and the history of earlier nights the charts show.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cellHistories, readReportHistory } from '../../src/nightly/report-history.ts';
import { logHref, nightlyHtml } from '../../src/nightly/report-html.ts';
import { nightlyJunitXml } from '../../src/nightly/report-junit.ts';
import { nightlyMarkdown } from '../../src/nightly/report-markdown.ts';
import type { NightlyReport } from '../../src/nightly/report-model.ts';
import { writeNightlyReports } from '../../src/nightly/reports.ts';
import { run, tempDir } from '../helpers.ts';
import { earlierNight, nightOfEveryStatus, passedCell } from './sample-reports.ts';

interface ParsedSuite {
  name: string;
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  time: number;
  cases: { classname: string; name: string; time: number; results: { type: string; message: string | null; text: string | null }[] }[];
}

// Debian's python3 (not a pyenv one in PATH) is the one that has Debian's junitparser.
const DEBIAN_PYTHON = '/usr/bin/python3';
const READ_JUNIT = `
import json, sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "errors": xml.errors, "skipped": xml.skipped, "suites": [{
  "name": s.name, "tests": s.tests, "failures": s.failures, "errors": s.errors, "skipped": s.skipped, "time": s.time,
  "cases": [{"classname": c.classname, "name": c.name, "time": c.time,
             "results": [{"type": type(r).__name__, "message": r.message, "text": r.text} for r in c.result]} for c in s]
} for s in xml]}))
`;

/** The JUnit file as junitparser reads it; a missing junitparser is a failure (setup/install.sh installs it). */
function readWithJunitparser(file: string): { tests: number; failures: number; errors: number; skipped: number; suites: ParsedSuite[] } {
  const result = run(DEBIAN_PYTHON, ['-c', READ_JUNIT, file]);
  assert.equal(result.status, 0, `junitparser (Debian's python3-junitparser, installed by setup/install.sh) could not read ${file}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

function writeReport(root: string, report: NightlyReport | string, version = typeof report === 'string' ? '' : report.version): void {
  mkdirSync(path.join(root, version), { recursive: true });
  writeFileSync(path.join(root, version, 'report.json'), typeof report === 'string' ? report : JSON.stringify(report));
}

describe('JUnit XML', () => {
  const reportsRoot = tempDir();
  const report = nightOfEveryStatus();
  const file = path.join(reportsRoot, 'report.xml');
  writeFileSync(file, nightlyJunitXml(report));
  const parsed = readWithJunitparser(file);
  const suite = (name: string) => parsed.suites.find((s) => s.name === name)!;
  const testCase = (suiteName: string, name: string) => suite(suiteName).cases.find((c) => c.name === name)!;

  it('xmllint reads it as well-formed XML', () => {
    const lint = run('xmllint', ['--noout', file]);
    assert.equal(lint.status, 0, lint.stderr);
  });

  it('one test suite per box x provider, named like debian-12.qemu, the counts of each matching its cases', () => {
    assert.deepEqual(parsed.suites.map((s) => s.name), report.cells.map((cell) => `${cell.box}.${cell.provider}`));
    for (const s of parsed.suites) {
      const has = (type: string) => s.cases.filter((c) => c.results.some((r) => r.type === type)).length;
      assert.deepEqual([s.tests, s.failures, s.errors, s.skipped], [s.cases.length, has('Failure'), has('Error'), has('Skipped')], s.name);
      for (const c of s.cases) assert.equal(c.classname, s.name);
    }
    assert.equal(parsed.tests, parsed.suites.reduce((sum, s) => sum + s.tests, 0));
    assert.equal(parsed.failures, 3);
    assert.equal(parsed.skipped, parsed.suites.reduce((sum, s) => sum + s.skipped, 0));
  });

  it('a passed cell: one passing case per stage and per smoke check, times in seconds', () => {
    assert.deepEqual(suite('debian-12.qemu').cases.map((c) => c.name), ['render', 'inputs', 'build', 'package', 'smoke', 'record', 'publish', 'smoke: docker runs a container', 'smoke: 2 CPUs']);
    assert.equal(testCase('debian-12.qemu', 'build').time, 612.5);
    assert.equal(testCase('debian-12.qemu', 'smoke: docker runs a container').time, 4.2);
    assert.ok(suite('debian-12.qemu').cases.every((c) => c.results.length === 0));
    // The suite's time is its stages' (the smoke checks' time is inside the smoke stage's).
    assert.equal(suite('debian-12.qemu').time, 754.6);
  });

  it('skipped and unchanged cells are skipped cases with the reason, or "unchanged since V"', () => {
    assert.deepEqual(testCase('debian-12.virtualbox', 'build').results, [{ type: 'Skipped', message: 'VirtualBox is not installed on this host', text: null }]);
    assert.deepEqual(testCase('debian-11.qemu', 'build').results, [{ type: 'Skipped', message: 'unchanged since 20261130.031500.0', text: null }]);
  });

  it('a failed stage is a failure with its error and the logs; the stages after it are skipped as not run', () => {
    const [failure] = testCase('ubuntu-22.04.qemu', 'build').results;
    assert.equal(failure?.type, 'Failure');
    assert.equal(failure?.message, 'packer build exited with code 1');
    assert.match(failure?.text ?? '', /logs: logs\/ubuntu-22\.04-qemu/);
    assert.deepEqual(testCase('ubuntu-22.04.qemu', 'package').results, [{ type: 'Skipped', message: 'not run: build failed', text: null }]);
  });

  it('a failed smoke check is a failure saying what was expected and what came back', () => {
    const [failure] = testCase('ubuntu-24.04.qemu', 'smoke: docker runs a container').results;
    assert.equal(failure?.message, 'expected hello, got docker: command not found');
    assert.match(failure?.text ?? '', /actual: docker: command not found\nexit 127/);
    assert.deepEqual(testCase('ubuntu-24.04.qemu', 'smoke: 2 CPUs').results, []);
  });

  it('a failed cell that no stage or check names still shows a failure; markup and control characters in errors stay text', () => {
    const night: NightlyReport = { ...nightOfEveryStatus(), cells: [{ box: 'debian-12', name: 'p/d', provider: 'qemu', status: 'failed', reason: 'lock <held> by "pid 7" & co\u0007', stages: [] }] };
    const xmlFile = path.join(reportsRoot, 'failed.xml');
    writeFileSync(xmlFile, nightlyJunitXml(night));
    assert.equal(run('xmllint', ['--noout', xmlFile]).status, 0);
    const [only] = readWithJunitparser(xmlFile).suites;
    assert.deepEqual(only?.cases.map((c) => [c.name, c.results[0]?.type, c.results[0]?.message]), [['nightly', 'Failure', 'lock <held> by "pid 7" & co']]);
  });
});

describe('HTML page', () => {
  const reportsRoot = tempDir();
  const report = nightOfEveryStatus();
  const html = nightlyHtml(report, { reportsRoot, nights: [report] });

  it('a heading with the version and times, and the summary line of counts per status', () => {
    assert.match(html, /<h1>boxsmith nightly 20261202\.031500\.0<\/h1>/);
    assert.match(html, /started <time datetime="2026-12-02T03:15:00\.000Z">2026-12-02 03:15:00 UTC<\/time>, finished .*took 47 min 30 s · exit code 1/);
    assert.match(html, /1 passed<\/span>, .*2 failed<\/span>, .*2 skipped<\/span>, .*1 unchanged<\/span>/);
  });

  it("a Box sizes table: each counted box against its guest's files as a tar compressed as the box is", () => {
    assert.match(html, /<h2>Box sizes<\/h2>\n<table class="sizes">/);
    assert.match(html, /<tr><td>debian-12<\/td><td>qemu<\/td><td>431\.0 MiB<\/td><td>1\.1 GiB<\/td><td>921\.0 MiB<\/td><td>430\.0 MiB \(gzip -6\)<\/td><td>1\.002x<\/td><\/tr>/);
  });

  it('the matrix: a row per box, a column per provider, each cell with its status and what it says', () => {
    const matrix = html.slice(html.indexOf('<table class="matrix"'), html.indexOf('</table>', html.indexOf('<table class="matrix"')));
    assert.match(matrix, /<th scope="col">box<\/th><th scope="col">qemu<\/th><th scope="col">virtualbox<\/th><th scope="col">vmware<\/th>/);
    assert.deepEqual([...matrix.matchAll(/<th scope="row">([^<]+)<\/th>/g)].map((m) => m[1]), ['debian-11', 'debian-12', 'ubuntu-22.04', 'ubuntu-24.04']);
    const cell = (id: string) => new RegExp(`<td class="cell (\\w+)" data-cell="${id.replace(/\./g, '\\.')}">(.*?)</td>`).exec(matrix);
    assert.equal(cell('debian-12.qemu')?.[1], 'passed');
    assert.match(cell('debian-12.qemu')?.[2] ?? '', /12 min 35 s · 431\.0 MiB/);
    assert.equal(cell('debian-12.virtualbox')?.[1], 'skipped');
    assert.match(cell('debian-12.virtualbox')?.[2] ?? '', /VirtualBox is not installed on this host/);
    assert.match(cell('debian-11.qemu')?.[2] ?? '', /since 20261130\.031500\.0/);
    assert.match(cell('ubuntu-22.04.qemu')?.[2] ?? '', /at build: packer build exited with code 1/);
    assert.equal([...matrix.matchAll(/<td class="cell none">/g)].length, 6, 'boxes without a cell for a provider');
  });

  it('each cell in detail: stages with durations, size, kernel, Docker, archive, package changes, each smoke check in <details>', () => {
    const section = html.slice(html.indexOf('data-cell="debian-12.qemu">', html.indexOf('<h2>Details')), html.indexOf('</section>', html.indexOf('<h2>Details')));
    assert.match(section, /<td>build<\/td><td>passed<\/td><td>10 min 13 s<\/td>/);
    assert.match(section, /<th scope="row">size<\/th><td>431\.0 MiB<\/td>/);
    assert.match(section, /<th scope="row">kernel<\/th><td>6\.1\.0-28-amd64<\/td>/);
    assert.match(section, /<th scope="row">Docker<\/th><td>27\.3\.1<\/td>/);
    assert.match(section, /<summary>3 packages changed since 20261201\.031500\.0<\/summary>/);
    assert.match(section, /<td>linux-image-6\.1\.0-27-amd64<\/td><td>6\.1\.115-1<\/td><td><em>removed<\/em><\/td>/);
    assert.match(section, /<td>openssl<\/td><td>3\.0\.14-1~deb12u2<\/td><td>3\.0\.15-1~deb12u1<\/td>/);
    assert.match(section, /bookworm-security<\/td><td>2026-12-01T22:40:00Z<\/td>/);
    assert.equal([...section.matchAll(/<details class="check passed"><summary>✓ /g)].length, 2);
    assert.match(html, /<details class="check failed" open><summary>✗ docker runs a container/);
  });

  it('loads nothing from anywhere: a CSP that forbids it, no external URL in any src or href', () => {
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">/);
    assert.doesNotMatch(html, /<script|<link|<iframe|@import|url\(/i);
    const urls = [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(urls.length > 0);
    for (const url of urls) assert.match(url, /^(#|file:|[^:]*$)/, url);
  });

  it('log links: relative inside reports/ (so they work from latest/ too), relative as given, else a file: URL', () => {
    const dir = path.join(reportsRoot, report.version);
    assert.equal(logHref('/var/log/boxsmith/debian 12', dir, reportsRoot), 'file:///var/log/boxsmith/debian%2012');
    assert.equal(logHref('logs/ubuntu-22.04-qemu', dir, reportsRoot), 'logs/ubuntu-22.04-qemu');
    assert.equal(logHref('javascript:alert(1)', dir, reportsRoot), 'javascript%3Aalert(1)');
    assert.equal(logHref(path.join(dir, 'logs', 'debian-12'), dir, reportsRoot), 'logs/debian-12');
    assert.equal(logHref(path.join(reportsRoot, 'runner-logs', 'x'), dir, reportsRoot), '../runner-logs/x');
    assert.match(html, /<a class="logs" href="file:\/\/\/var\/log\/boxsmith\/debian-12-qemu">\/var\/log\/boxsmith\/debian-12-qemu<\/a>/);
  });

  it('text from the data is inert: a <script> in an error, a box name or check output comes out as text', () => {
    const hostile = '</pre></td><script>document.title="pwned"</script><img src=x onerror=alert(1)>';
    const night: NightlyReport = {
      ...nightOfEveryStatus(),
      cells: [
        { ...passedCell(), box: `evil${hostile}`, smoke: { passed: false, checks: [{ name: hostile, passed: false, duration_s: 1, expected: hostile, actual: hostile }] } },
        { box: 'debian-12', name: 'p/d', provider: 'qemu', status: 'failed', reason: `boom\n${hostile}`, stages: [{ name: 'build', status: 'failed', error: hostile }], logs: hostile },
      ],
    };
    const page = nightlyHtml(night, { reportsRoot, nights: [night] });
    assert.doesNotMatch(page, /<script|<img|onerror=alert\(1\)>/);
    assert.match(page, /&lt;script&gt;document\.title=&quot;pwned&quot;&lt;\/script&gt;/);
    const markdown = nightlyMarkdown(night);
    assert.doesNotMatch(markdown, /<script|<img/);
  });
});

describe('Markdown summary', () => {
  it('the counts, the matrix with one row per box, and the failures with their logs; data cannot break the table', () => {
    const markdown = nightlyMarkdown(nightOfEveryStatus());
    assert.match(markdown, /^# boxsmith nightly 20261202\.031500\.0$/m);
    assert.match(markdown, /exit code 1: 1 passed, 2 failed, 2 skipped, 1 unchanged$/m);
    assert.match(markdown, /^\| box \| qemu \| virtualbox \| vmware \|$/m);
    assert.match(markdown, /^\| debian-12 \| passed \(12 min 35 s, 431\.0 MiB\) \| skipped: VirtualBox is not installed on this host \| skipped: VMware .* \|$/m);
    assert.match(markdown, /^\| debian-11 \| unchanged since 20261130\.031500\.0 \| — \| — \|$/m);
    assert.match(markdown, /^- ubuntu-22\.04 on qemu: failed at build: packer build exited with code 1 \(logs: logs\/ubuntu-22\.04-qemu\)$/m);
    // The guest's files against the box, for the cells whose record counted them.
    assert.match(markdown, /^## Box sizes$/m);
    assert.match(markdown, /^\| box \| provider \| box size \| used in the guest \| files as tar \| tar compressed \| box \/ tar compressed \|$/m);
    assert.match(markdown, /^\| debian-12 \| qemu \| 431\.0 MiB \| 1\.1 GiB \| 921\.0 MiB \| 430\.0 MiB \(gzip -6\) \| 1\.002x \|$/m);
    assert.equal(markdown.match(/^\| debian-1[12] \| qemu \| /gm)?.length, 1);
    const piped = nightlyMarkdown({ ...nightOfEveryStatus(), cells: [{ box: 'a|b', name: 'p/a', provider: 'qemu', status: 'skipped', reason: 'x | y\nz', stages: [] }] });
    assert.match(piped, /^\| a\\\|b \| skipped: x \\\| y \|$/m);
  });
});

describe('history of earlier nights', () => {
  it('the last 30 nights in version order (1.0.9 before 1.0.10), tonight last; unreadable reports named and left out', () => {
    const reportsRoot = tempDir();
    for (const n of [...Array.from({ length: 34 }, (_, i) => i + 1), 39, 40]) writeReport(reportsRoot, earlierNight(`1.0.${n}`, 500 + n, n * 1_000_000));
    writeReport(reportsRoot, '{ not json', '1.0.38');
    writeReport(reportsRoot, JSON.stringify({ ...earlierNight('1.0.37', 1, 1), schema: 'something-else/9' }), '1.0.37');
    writeReport(reportsRoot, earlierNight('1.0.99', 1, 1), '1.0.36'); // a report.json moved to another version's folder
    mkdirSync(path.join(reportsRoot, '1.0.35')); // a night that died before writing its report
    writeFileSync(path.join(reportsRoot, '1.0.35', 'note'), '');
    writeReport(reportsRoot, earlierNight('1.0.50', 1, 1)); // newer than tonight: not history
    writeReport(reportsRoot, earlierNight('1.0.41', 1, 1), 'latest');
    const tonight = { ...nightOfEveryStatus('1.0.41') };

    const history = readReportHistory(reportsRoot, tonight);
    const expected = [...Array.from({ length: 34 }, (_, i) => `1.0.${i + 1}`), '1.0.39', '1.0.40'].slice(-29);
    assert.deepEqual(history.nights.map((night) => night.version), [...expected, '1.0.41']);
    assert.equal(history.nights.at(-1), tonight);
    assert.deepEqual(history.unreadable.map((u) => path.relative(reportsRoot, u.file)).sort(), ['1.0.36/report.json', '1.0.37/report.json', '1.0.38/report.json']);
    assert.match(history.unreadable.find((u) => u.file.includes('1.0.37'))!.reason, /schema is "something-else\/9"/);
  });

  it('per box x provider: the build time and box size of each night, gaps where it was not built, never-built cells left out', () => {
    const tonight = nightOfEveryStatus('1.0.3');
    const histories = cellHistories([earlierNight('1.0.1', 500, 400), { ...earlierNight('1.0.2', 0, 0), cells: [] }, tonight]);
    assert.deepEqual(histories.map((h) => `${h.box}.${h.provider}`), ['debian-11.qemu', 'debian-12.qemu', 'ubuntu-22.04.qemu', 'ubuntu-24.04.qemu']);
    const debian12 = histories.find((h) => h.box === 'debian-12')!;
    assert.deepEqual(debian12.points.map((p) => [p?.seconds, p?.size]), [[500, 400], [undefined, undefined], [754.6, 431 * 1024 * 1024]]);
    const debian11 = histories.find((h) => h.box === 'debian-11')!;
    assert.deepEqual(debian11.points.at(-1), { status: 'unchanged', size: 402 * 1024 * 1024 });
  });

  it('writeNightlyReports charts them, and writes every file into reports/<version>/ and the same into latest/', async () => {
    const reportsRoot = tempDir();
    for (let n = 1; n <= 35; n++) writeReport(reportsRoot, earlierNight(`20261${String(100 + n).padStart(3, '0')}.031500.0`, 500 + n, n * 1_000_000));
    writeReport(reportsRoot, '[]', '20261136.031500.0');
    const dir = await writeNightlyReports(nightOfEveryStatus(), reportsRoot);
    for (const name of ['report.json', 'report.xml', 'report.html', 'report.md']) {
      assert.ok(existsSync(path.join(dir, name)), name);
      assert.equal(readFileSync(path.join(reportsRoot, 'latest', name), 'utf8'), readFileSync(path.join(dir, name), 'utf8'), name);
    }
    const html = readFileSync(path.join(dir, 'report.html'), 'utf8');
    assert.match(html, /<h2>The last 30 nights<\/h2>/);
    const figure = /<figure class="history" data-cell="debian-12\.qemu">.*?<\/figure>/.exec(html)?.[0] ?? '';
    assert.equal([...figure.matchAll(/<circle /g)].length, 60, 'a point per night in both charts');
    assert.match(figure, /<title>20261107\.031500\.0: 8 min 27 s<\/title>/, 'the oldest of the 30');
    assert.doesNotMatch(figure, /20261106\.031500\.0/);
  });
});
