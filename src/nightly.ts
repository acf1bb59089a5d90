// `boxsmith nightly`: what a nightly CI job runs. Every box this host can build is built and
// smoke-tested under one version, the boxes that passed are published (when a target is given),
// and a report for people (Markdown) and machines (JSON) is written into reports/.
import path from 'node:path';
import { writeFileAtomic } from './atomic-files.ts';
import { claimFolder } from './files/owned-folder.ts';
import { buildSummary, planBuilds, runBuilds, type BuildRunOutcome } from './build/run.ts';
import { listBoxes, loadDefinition } from './definitions/load.ts';
import { cacheRoot } from './inputs/iso.ts';
import { publishBox } from './publish/publish.ts';
import { formatReport, type PublishReport } from './publish/report.ts';
import { claimCatalogTree } from './publish/static-target.ts';
import type { PublishTarget } from './publish/target.ts';
import { claimOutputFolders, defaultVersion, packerVersionFor, REPORTS_DIR } from './run-settings.ts';

export interface NightlyOptions {
  /** The boxes to build; none: every box. */
  boxes: string[];
  target?: PublishTarget;
  dryRun: boolean;
  parallel?: number;
  timeoutOverrides: Record<string, number>;
  keep?: number;
  reportDir: string;
  dirs: { boxesDir: string; workRoot: string; logsDir: string };
}

/** The exit code: 0 when every build passed and every publish succeeded. */
export async function runNightly(options: NightlyOptions): Promise<number> {
  const { target, timeoutOverrides, dirs } = options;
  const boxes = (options.boxes.length ? options.boxes : listBoxes()).map((box) => loadDefinition(box));
  const version = defaultVersion();
  const plan = planBuilds(boxes, []);
  // The report and catalog folders are checked now, not after hours of building (runBuilds checks its own first).
  if (options.reportDir === REPORTS_DIR) claimOutputFolders({ reports: options.reportDir });
  else claimFolder({ dir: options.reportDir, kind: 'reports', namedBy: '--report-dir' });
  if (target?.kind === 'static') claimCatalogTree(target.root, { checkOnly: options.dryRun });
  const started = new Date();

  let outcome: BuildRunOutcome | undefined;
  if (plan.targets.length) {
    outcome = await runBuilds({
      targets: plan.targets,
      version,
      packer: packerVersionFor(undefined),
      ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
      timeoutOverrides,
      ...dirs,
      cacheDir: cacheRoot(),
      keepWork: false,
      smokeTest: true,
      aptCache: true,
    });
  }
  const results = outcome?.results ?? [];
  console.log(`\n${buildSummary(results, plan.skipped)}`);
  if (outcome?.interruptExitCode != null) return outcome.interruptExitCode;

  const published: PublishReport[] = [];
  const publishFailures: string[] = [];
  if (target) {
    for (const box of new Set(results.filter((r) => r.ok).map((r) => r.target.loaded.box))) {
      try {
        const report = await publishBox({
          box,
          target,
          version,
          boxesDir: dirs.boxesDir,
          dryRun: options.dryRun,
          ...(options.keep !== undefined ? { keep: options.keep } : {}),
          log: (line) => console.log(`  | ${line}`),
        });
        published.push(report);
        console.log(formatReport(report));
        if (!report.ok) publishFailures.push(`${box}: not every provider was published`);
      } catch (error) {
        publishFailures.push(`${box}: ${(error as Error).message}`);
        console.log(`FAILED to publish ${box}: ${(error as Error).message}`);
      }
    }
  }

  const { reportDir } = options;
  const summary = {
    version,
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    builds: results.map((r) => ({
      box: r.target.loaded.box,
      provider: r.target.provider,
      ok: r.ok,
      ...(r.ok ? { file: r.boxFile, sha256: r.record!.sha256, durations_s: r.record!.durations_s, smoke_test: r.record!.smoke_test } : {}),
      ...(r.ok ? {} : { error: r.error instanceof Error ? r.error.message : String(r.error), logs: r.logDir }),
    })),
    skipped: plan.skipped,
    published: published.map((p) => ({ target: p.target, name: p.name, version: p.version, ok: p.ok, released: p.released, dry_run: p.dryRun })),
    publish_failures: publishFailures,
  };
  const base = path.join(reportDir, `nightly-${version}`);
  await writeFileAtomic(`${base}.json`, `${JSON.stringify(summary, null, 2)}\n`);
  await writeFileAtomic(`${base}.md`, markdownReport(summary));
  console.log(`report: ${base}.md`);
  const ok = results.length > 0 && results.every((r) => r.ok) && publishFailures.length === 0;
  return ok ? 0 : 1;
}

function markdownReport(summary: {
  version: string;
  started_at: string;
  finished_at: string;
  builds: { box: string; provider: string; ok: boolean; durations_s?: Record<string, number>; error?: string; logs?: string }[];
  skipped: { box: string; provider: string; reason: string }[];
  published: { target: string; name: string; ok: boolean; released: boolean; dry_run: boolean }[];
  publish_failures: string[];
}): string {
  const lines = [
    `# boxsmith nightly ${summary.version}`,
    '',
    `${summary.started_at} to ${summary.finished_at}`,
    '',
    '| box | provider | result | seconds per stage |',
    '| --- | --- | --- | --- |',
    ...summary.builds.map((b) => `| ${b.box} | ${b.provider} | ${b.ok ? 'passed' : `**failed**: ${(b.error ?? '').split('\n')[0]} (logs: ${b.logs})`} | ${b.durations_s ? Object.entries(b.durations_s).map(([k, v]) => `${k} ${v}`).join(', ') : ''} |`),
    ...summary.skipped.map((s) => `| ${s.box} | ${s.provider} | skipped: ${s.reason} | |`),
  ];
  if (summary.published.length || summary.publish_failures.length) {
    lines.push('', '## Published', '');
    for (const p of summary.published) lines.push(`- ${p.name} to ${p.target}: ${p.dry_run ? 'dry run' : p.ok ? 'published' : 'FAILED'}${p.released ? ', released' : ''}`);
    for (const failure of summary.publish_failures) lines.push(`- FAILED: ${failure}`);
  }
  return `${lines.join('\n')}\n`;
}
