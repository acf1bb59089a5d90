// `boxsmith nightly`: what a nightly CI job runs. Every box x provider is planned (src/nightly/plan.ts):
// skipped where this host cannot build it, unchanged where its inputs hash the same as its last
// good build (nothing boots), else built and smoke-tested under tonight's version. The boxes that
// passed are published (when a target is given), and the night's report goes into
// reports/<version>/ and reports/latest/ (src/nightly/reports.ts). One nightly at a time per host
// and target (src/nightly/lock.ts); a failed box never stops the others.
import { claimFolder } from '../files/owned-folder.ts';
import { buildSummary, runBuilds, type BuildRunOutcome } from '../build/run.ts';
import type { BuildTarget } from '../build/build-state.ts';
import { listBoxes, loadDefinition } from '../definitions/load.ts';
import type { Provider } from '../definitions/schema.ts';
import { cacheRoot } from '../inputs/cache.ts';
import { claimCatalogTree } from '../publish/static-target.ts';
import type { PackerVersion } from '../packer/version.ts';
import type { PublishTarget } from '../publish/target.ts';
import { claimOutputFolders, defaultVersion, packerVersionFor, REPORTS_DIR } from '../run-settings.ts';
import { cellBuilt, cellNotBuilt, nightExitCode, publishPassedCells, sortCells } from './cells.ts';
import { acquireNightlyLock, NightlyLockedError } from './lock.ts';
import { formatPlan, planMatrix, planNight, type CellPlan } from './plan.ts';
import { REPORT_SCHEMA, type CellReport, type NightlyReport } from './report-model.ts';
import { writeNightlyReports } from './reports.ts';

export interface NightlyOptions {
  /** The boxes to plan; none (and no cells): every box. */
  boxes: string[];
  /** Only these cells (`--cell box:provider`, one CI runner's share). */
  cells: { box: string; provider: Provider }[];
  target?: PublishTarget;
  /** Publishing only is a dry run; the builds run as usual. */
  publishDryRun: boolean;
  /** Tonight's version (a fanned-out night passes the plan's to every runner); default: from the time. */
  version?: string;
  force: boolean;
  /** Print the plan and build nothing. */
  plan?: { json: boolean; forRunners: boolean; partDir?: string };
  smokeTest: boolean;
  aptCache: boolean;
  parallel?: number;
  timeoutOverrides: Record<string, number>;
  keep?: number;
  reportDir: string;
  dirs: { boxesDir: string; workRoot: string; logsDir: string };
}

/** The exit code: 0 when no cell failed and every publish succeeded. */
export async function runNightly(options: NightlyOptions): Promise<number> {
  const { target, dirs } = options;
  const names = options.boxes.length || options.cells.length ? [...new Set([...options.boxes, ...options.cells.map((c) => c.box)])] : listBoxes();
  const boxes = names.map((box) => loadDefinition(box));
  const version = options.version ?? defaultVersion();
  const packer = packerVersionFor(undefined);
  const plan = (forRunners: boolean) =>
    planNight({ boxes, cells: options.cells, force: options.force, ...(target ? { target } : {}), boxesDir: dirs.boxesDir, logsDir: dirs.logsDir, packer, untestedIsGood: !options.smokeTest, forRunners });

  if (options.plan) {
    const started = new Date();
    const cells = await plan(options.plan.forRunners);
    console.log(options.plan.json ? JSON.stringify(planMatrix(cells, version)) : formatPlan(cells));
    // The cells no runner builds, as a report part: report:merge joins it with the runners' parts.
    if (options.plan.partDir) {
      claimFolder({ dir: options.plan.partDir, kind: 'reports', namedBy: '--report-dir' });
      await writeNightlyReports(nightReport(version, started, cells.filter((c) => c.decision !== 'build').map((cell) => cellNotBuilt(cell, dirs.boxesDir))), options.plan.partDir);
    }
    return 0;
  }

  // The report and catalog folders are checked now, not after hours of building (runBuilds checks its own first).
  if (options.reportDir === REPORTS_DIR) claimOutputFolders({ reports: options.reportDir });
  else claimFolder({ dir: options.reportDir, kind: 'reports', namedBy: '--report-dir' });
  if (target?.kind === 'static') claimCatalogTree(target.root, { checkOnly: options.publishDryRun });
  const cacheDir = cacheRoot();
  // All of them before the lock (in the cache folder) and the plan, which reads boxes/.
  claimOutputFolders({ boxes: dirs.boxesDir, work: dirs.workRoot, logs: dirs.logsDir, cache: cacheDir });
  let release: () => Promise<void>;
  try {
    release = await acquireNightlyLock(cacheDir, target, (line) => console.log(line));
  } catch (error) {
    if (!(error instanceof NightlyLockedError)) throw error;
    console.error(`boxsmith: ${error.message}`);
    return 1;
  }
  try {
    return await night(options, version, packer, await plan(false));
  } finally {
    await release();
  }
}

async function night(options: NightlyOptions, version: string, packer: PackerVersion, planned: CellPlan[]): Promise<number> {
  const { target, dirs } = options;
  const started = new Date();
  console.log(`nightly ${version}:\n${formatPlan(planned)}\n`);
  const building = planned.filter((c) => c.decision === 'build');
  const targets: BuildTarget[] = building.map((c) => ({ loaded: c.loaded, provider: c.provider, ...(c.inputs ? { inputs: c.inputs } : {}) }));
  let outcome: BuildRunOutcome | undefined;
  if (targets.length) {
    outcome = await runBuilds({
      targets,
      version,
      // The one the plan rendered with: the inputs it hashed are the build's.
      packer,
      ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
      timeoutOverrides: options.timeoutOverrides,
      ...dirs,
      cacheDir: cacheRoot(),
      keepWork: false,
      smokeTest: options.smokeTest,
      aptCache: options.aptCache,
    });
    console.log(`\n${buildSummary(outcome.results, [])}`);
    if (outcome.interruptExitCode != null) return outcome.interruptExitCode;
  }
  const cells: CellReport[] = planned.map((cell) => {
    if (cell.decision !== 'build') return cellNotBuilt(cell, dirs.boxesDir);
    const result = outcome!.results[building.indexOf(cell)]!;
    return cellBuilt(cell, result, version, dirs.boxesDir);
  });
  if (target) {
    await publishPassedCells(cells, {
      target,
      version,
      boxesDir: dirs.boxesDir,
      dryRun: options.publishDryRun,
      allowUntested: !options.smokeTest,
      ...(options.keep !== undefined ? { keep: options.keep } : {}),
    });
  }
  const report = nightReport(version, started, cells);
  const dir = await writeNightlyReports(report, options.reportDir);
  console.log(`report: ${dir}`);
  return report.exit_code;
}

function nightReport(version: string, started: Date, cells: CellReport[]): NightlyReport {
  const sorted = sortCells(cells);
  return { schema: REPORT_SCHEMA, version, started_at: started.toISOString(), finished_at: new Date().toISOString(), cells: sorted, exit_code: nightExitCode(sorted) };
}
