// The nightly HTML report opened as people open it: from disk, in a real browser (Debian's headless
// chromium). Its console must stay silent (a blocked external load or a script error would speak),
// the DOM Chromium built is queried with xmllint's XPath, and a screenshot is kept to look at.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CONTENT_SECURITY_POLICY } from '../../src/nightly/report-html.ts';
import type { NightlyReport } from '../../src/nightly/report-model.ts';
import { writeNightlyReports } from '../../src/nightly/reports.ts';
import { run, tempDir } from '../helpers.ts';
import { earlierNight, nightOfEveryStatus, passedCell } from './sample-reports.ts';

/** Headless, as root (hence no sandbox), with a profile of its own so runs never share one. */
function chromiumArgs(profile: string): string[] {
  return ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, '--no-first-run', '--enable-logging=stderr', '--v=0'];
}

/** Why chromium cannot run here, or undefined when it can. */
function chromiumUnavailable(): string | undefined {
  const profile = tempDir('boxsmith-chromium-');
  const probe = spawnSync('chromium', [...chromiumArgs(profile), '--dump-dom', 'about:blank'], { encoding: 'utf8', timeout: 60_000 });
  if ((probe.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return "chromium is not installed (setup/install.sh installs Debian's chromium)";
  if (probe.error) return `chromium could not be started: ${probe.error.message}`;
  if (probe.status !== 0 || !probe.stdout.includes('<html')) return `headless chromium does not run here (exit ${probe.status}): ${probe.stderr.trim().split('\n').slice(-3).join(' / ')}`;
  return undefined;
}

const UNAVAILABLE = chromiumUnavailable();

/** Opens a file in headless chromium: the DOM it built (saved beside the page) and what its console said. */
function openInChromium(file: string, screenshot?: string): { domFile: string; console: string[] } {
  const profile = tempDir('boxsmith-chromium-');
  const extra = screenshot ? ['--hide-scrollbars', '--window-size=1280,1800', `--screenshot=${screenshot}`] : [];
  const result = run('chromium', [...chromiumArgs(profile), ...extra, '--dump-dom', pathToFileURL(file).href], { timeout: 60_000 });
  assert.equal(result.status, 0, result.stderr);
  const domFile = `${file}.dom.html`;
  writeFileSync(domFile, result.stdout);
  // Chromium logs each console message (errors, CSP violations, uncaught exceptions) as CONSOLE(line) or CONSOLE:line.
  return { domFile, console: result.stderr.split('\n').filter((line) => /:CONSOLE[(:]\d+\]/.test(line)) };
}

/** The value of an XPath expression over an HTML file (xmllint's HTML parser; its complaints about HTML5 tags are noise). */
function xpath(htmlFile: string, expression: string): string {
  const result = run('xmllint', ['--html', '--xpath', expression, htmlFile]);
  assert.equal(result.status, 0, `xmllint --xpath '${expression}': ${result.stderr.slice(-500)}`);
  return result.stdout.replace(/\n$/, '');
}

function skipIfNoChromium(t: TestContext): boolean {
  if (!UNAVAILABLE) return false;
  t.diagnostic(`SKIPPED, not passed: ${UNAVAILABLE}`);
  t.skip(UNAVAILABLE);
  return true;
}

describe('the HTML report in headless chromium', () => {
  it('the console check hears a script error and a blocked external load (so its silence below means something)', (t) => {
    if (skipIfNoChromium(t)) return;
    const dir = tempDir();
    const page = path.join(dir, 'noisy.html');
    // The report's own policy, with inline scripts allowed, on a page that breaks it (a loopback address, should the policy fail).
    writeFileSync(page, `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}; script-src 'unsafe-inline'"></head>`
      + '<body><img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>');
    const noisy = openInChromium(page).console;
    assert.equal(noisy.length, 2, noisy.join('\n'));
    assert.match(noisy.join('\n'), /Loading the image 'http:\/\/127\.0\.0\.1:9\/x\.png' violates the following Content Security Policy directive/);
    assert.match(noisy.join('\n'), /"boom"/);
  });

  it('a night of every status with 30 nights of history: silent console, every matrix cell, the charts, a screenshot', async (t) => {
    if (skipIfNoChromium(t)) return;
    // Kept after the test (in the system's temp folder) so that a person can look at the page and the screenshot.
    const reportsRoot = mkdtempSync(path.join(tmpdir(), 'boxsmith-report-html-'));
    for (let n = 1; n <= 34; n++) {
      const version = `20261${String(100 + n).padStart(3, '0')}.031500.0`;
      mkdirSync(path.join(reportsRoot, version));
      writeFileSync(path.join(reportsRoot, version, 'report.json'), JSON.stringify(earlierNight(version, 560 + 40 * Math.sin(n), (400 + n) * 1024 * 1024)));
    }
    const report = nightOfEveryStatus();
    await writeNightlyReports(report, reportsRoot);
    {
      const page = path.join(reportsRoot, 'latest', 'report.html');
      const screenshot = path.join(reportsRoot, 'report.png');
      const opened = openInChromium(page, screenshot);
      assert.deepEqual(opened.console, []);

      assert.equal(xpath(opened.domFile, 'string(//h1)'), 'boxsmith nightly 20261202.031500.0');
      assert.equal(xpath(opened.domFile, 'normalize-space(//p[@id="summary"])'), '1 passed, 2 failed, 2 skipped, 1 unchanged');
      const cells = (status: string) => Number(xpath(opened.domFile, `count(//table[@class="matrix"]//td[@class="cell ${status}"])`));
      assert.deepEqual(['passed', 'failed', 'skipped', 'unchanged', 'none'].map(cells), [1, 2, 2, 1, 6]);
      for (const cell of report.cells) {
        const id = `${cell.box}.${cell.provider}`;
        assert.equal(xpath(opened.domFile, `string(//td[@data-cell="${id}"]//span[contains(@class, "badge")])`), cell.status, id);
        // Each matrix cell links to its details.
        const target = xpath(opened.domFile, `string(//td[@data-cell="${id}"]/a/@href)`).slice(1);
        assert.equal(xpath(opened.domFile, `string(//section[@id="${target}"]/@data-cell)`), id);
      }
      assert.equal(Number(xpath(opened.domFile, 'count(//figure[@class="history"])')), 4);
      assert.equal(Number(xpath(opened.domFile, 'count(//figure[@class="history"]/svg[@class="chart"])')), 8);
      assert.equal(Number(xpath(opened.domFile, 'count(//figure[@data-cell="debian-12.qemu"]/svg[@data-series="build time"]//circle)')), 30);
      assert.equal(Number(xpath(opened.domFile, 'count(//figure[@data-cell="debian-12.qemu"]/svg[@data-series="box size"]/polyline)')), 1);
      assert.equal(Number(xpath(opened.domFile, 'count(//section[@data-cell="ubuntu-24.04.qemu"]//details[contains(@class, "check")])')), 2);

      const png = readFileSync(screenshot);
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
      assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1280, 1800]);
      t.diagnostic(`screenshot: ${screenshot} (the page: ${page})`);
    }
  });

  it('a <script> in an error, a box name and check output stays text in the DOM, and nothing runs', async (t) => {
    if (skipIfNoChromium(t)) return;
    const reportsRoot = tempDir();
    const hostile = '</pre></td><script>document.title="pwned";console.error("pwned")</script><img src=x onerror="console.error(1)">';
    const night: NightlyReport = {
      ...nightOfEveryStatus(),
      cells: [
        { ...passedCell(), box: `evil${hostile}`, smoke: { passed: false, checks: [{ name: hostile, passed: false, duration_s: 1, expected: hostile, actual: hostile }] } },
        { box: 'debian-12', name: 'p/d', provider: 'qemu', status: 'failed', reason: hostile, stages: [{ name: 'build', status: 'failed', error: hostile }], logs: hostile },
      ],
    };
    const dir = await writeNightlyReports(night, reportsRoot);
    const opened = openInChromium(path.join(dir, 'report.html'));
    assert.deepEqual(opened.console, []);
    assert.equal(xpath(opened.domFile, 'count(//script)'), '0');
    assert.equal(xpath(opened.domFile, 'count(//img)'), '0');
    assert.equal(xpath(opened.domFile, 'string(//title)'), 'boxsmith nightly 20261202.031500.0');
    assert.equal(xpath(opened.domFile, 'string(//section[@data-cell="debian-12.qemu"]//table[@class="stages"]//td[4])'), hostile);
    assert.equal(xpath(opened.domFile, 'string(//table[@class="matrix"]//th[@scope="row"][starts-with(., "evil")])'), `evil${hostile}`);
  });
});
