// `boxsmith nightly`: what a nightly CI job runs. Every box this host can build is built and
// smoke-tested under one version, the boxes that passed are published (when a target is given),
// and a report for people (Markdown) and machines (JSON) is written into reports/.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from './atomic-files.ts';
import { claimFolder } from './files/owned-folder.ts';
import { buildSummary, planBuilds, runBuilds, type BuildRunOutcome } from './build/run.ts';
import { listBoxes, loadDefinition } from './definitions/load.ts';
import { STAGES } from './definitions/schema.ts';
import { parseTimeoutOverrides } from './exec/timeouts.ts';
import { cacheRoot } from './inputs/iso.ts';
import { publishBox } from './publish/publish.ts';
import { formatReport, type PublishReport } from './publish/report.ts';
import { claimCatalogTree } from './publish/static-target.ts';
import { parseTarget } from './publish/target.ts';
import { claimOutputFolders, defaultVersion, outputDirectories, packerVersionFor, REPORTS_DIR } from './run-settings.ts';

export async function commandNightly(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      box: { type: 'string', multiple: true },
      to: { type: 'string' },
      'dry-run': { type: 'boolean' },
      parallel: { type: 'string' },
      timeout: { type: 'string' },
      keep: { type: 'string' },
      'report-dir': { type: 'string' },
    },
  });
  const boxes = (values.box ?? listBoxes()).map((box) => loadDefinition(box));
  const target = values.to ? parseTarget(values.to) : undefined;
  const timeoutOverrides = values.timeout ? parseTimeoutOverrides(values.timeout, STAGES) : {};
  const version = defaultVersion();
  const plan = planBuilds(boxes, []);
  const dirs = outputDirectories();
  // The report and catalog folders are checked now, not after hours of building (runBuilds checks its own first).
  const reportDir = path.resolve(values['report-dir'] ?? REPORTS_DIR);
  if (values['report-dir'] !== undefined) claimFolder({ dir: reportDir, kind: 'reports', namedBy: '--report-dir' });
  else claimOutputFolders({ reports: reportDir });
  if (target?.kind === 'static') claimCatalogTree(target.root, { checkOnly: values['dry-run'] ?? false });
  const started = new Date();

  let outcome: BuildRunOutcome | undefined;
  if (plan.targets.length) {
    outcome = await runBuilds({
      targets: plan.targets,
      version,
      packer: packerVersionFor(undefined),
      ...(values.parallel ? { parallel: Number(values.parallel) } : {}),
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
          dryRun: values['dry-run'] ?? false,
          ...(values.keep ? { keep: Number(values.keep) } : {}),
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
