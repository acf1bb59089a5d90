// The cells of a night's report (src/nightly/report-model.ts) from the plan and the builds, the
// publishing of what passed, and the exit code: shared by the nightly run and report:merge, so a
// merged report says what one run would.
import { hostname } from 'node:os';
import { BUILD_STEPS, type BuildResult } from '../build/build-state.ts';
import { SmokeTestFailedError } from '../build/step-smoke.ts';
import { publishBox } from '../publish/publish.ts';
import { formatReport } from '../publish/report.ts';
import { describeTarget, type PublishTarget } from '../publish/target.ts';
import { boxProvider } from '../render/context.ts';
import type { SmokeResult } from '../smoke/result.ts';
import type { BuildRecord } from '../store/build-record.ts';
import { packageChangesSincePrevious } from '../store/manifest.ts';
import type { CellPlan } from './plan.ts';
import type { CellReport, StageReport } from './report-model.ts';

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!;

function cellBase(plan: CellPlan): CellReport {
  const { definition } = plan.loaded;
  return {
    box: plan.box,
    name: `${definition.org}/${definition.box_name}`,
    provider: plan.provider,
    status: 'skipped',
    ...(plan.inputs?.input_hash ? { input_hash: plan.inputs.input_hash } : {}),
    stages: [],
    runner: hostname(),
  };
}

/** What the build record and the manifest beside a box say of it: kernel, Docker, package changes since the version before. */
function boxFacts(plan: CellPlan, record: BuildRecord, boxesDir: string): Partial<CellReport> {
  const { org, box_name: boxName } = plan.loaded.definition;
  let changes: ReturnType<typeof packageChangesSincePrevious>;
  try {
    changes = packageChangesSincePrevious(boxesDir, { org, boxName, boxProvider: record.provider, version: record.version });
  } catch (error) {
    // A damaged manifest costs the report its package changes, not the night.
    console.log(`package changes of ${record.name} ${record.version} left out: ${firstLine(error)}`);
  }
  return {
    ...(record.archive ? { archive: record.archive } : {}),
    ...(record.kernel ? { kernel: record.kernel } : {}),
    ...(record.docker ? { docker: record.docker } : {}),
    ...(record.content ? { content: record.content } : {}),
    ...(changes ? { package_changes: changes } : {}),
  };
}

/** A cell that is not built tonight: skipped, or unchanged with its last good box's facts. */
export function cellNotBuilt(plan: CellPlan, boxesDir: string): CellReport {
  if (plan.decision === 'skipped') return { ...cellBase(plan), status: 'skipped', reason: plan.reason };
  const { record, file } = plan.last!;
  return {
    ...cellBase(plan),
    status: 'unchanged',
    reason: plan.reason,
    box_version: record.version,
    unchanged_since: record.version,
    artifact: { file, size: record.size, sha256: record.sha256 },
    ...boxFacts(plan, record, boxesDir),
  };
}

/** A cell built tonight: its stages (durations, the failing one), box and smoke checks. */
export function cellBuilt(plan: CellPlan, result: BuildResult, version: string, boxesDir: string): CellReport {
  const steps = result.report?.steps ?? [];
  const stages: StageReport[] = [];
  for (const name of BUILD_STEPS) {
    const step = steps.find((s) => s.name === name);
    if (step) {
      stages.push({
        name,
        status: step.status === 'succeeded' ? 'passed' : 'failed',
        seconds: Math.round(step.durationMs / 100) / 10,
        ...(step.status === 'succeeded' ? {} : { error: firstLine(step.error ?? result.error) }),
      });
    } else if (!result.ok || name !== 'smoke') {
      stages.push({ name, status: 'skipped' });
    }
  }
  const smoke = smokeOf(result);
  return {
    ...cellBase(plan),
    status: result.ok ? 'passed' : 'failed',
    ...(result.ok ? {} : { reason: firstLine(result.error) }),
    box_version: version,
    ...(plan.changed_inputs ? { changed_inputs: plan.changed_inputs } : {}),
    stages,
    ...(result.ok ? { artifact: { file: result.boxFile!, size: result.record!.size, sha256: result.record!.sha256 } } : {}),
    ...(smoke ? { smoke: { passed: smoke.passed, checks: smoke.checks.map((c) => ({ name: c.name, passed: c.passed, duration_s: c.duration_s, expected: c.expected, actual: c.actual })) } } : {}),
    logs: result.logDir,
    ...(result.record ? boxFacts(plan, result.record, boxesDir) : plan.inputs?.archive ? { archive: plan.inputs.archive } : {}),
  };
}

/** The smoke result: the failed test's from its error, a passed box's as its build made it. */
function smokeOf(result: BuildResult): SmokeResult | undefined {
  return result.error instanceof SmokeTestFailedError ? result.error.result : result.smoke;
}

export interface PublishCellsOptions {
  target: PublishTarget;
  version: string;
  boxesDir: string;
  dryRun: boolean;
  keep?: number;
  /** Publish boxes that were not smoke-tested (the night ran with --no-test). */
  allowUntested: boolean;
}

/**
 * Publishes the boxes of the passed cells, box by box (a box's providers go out as one version),
 * and notes on each cell how it went. A failed publish of one box does not stop the others.
 */
export async function publishPassedCells(cells: CellReport[], options: PublishCellsOptions): Promise<void> {
  const where = describeTarget(options.target);
  for (const box of [...new Set(cells.filter((c) => c.status === 'passed').map((c) => c.box))]) {
    const passed = cells.filter((c) => c.box === box && c.status === 'passed');
    try {
      const report = await publishBox({
        box,
        target: options.target,
        version: options.version,
        boxesDir: options.boxesDir,
        dryRun: options.dryRun,
        allowUntested: options.allowUntested,
        ...(options.keep !== undefined ? { keep: options.keep } : {}),
        log: (line) => console.log(`  | ${line}`),
      });
      console.log(formatReport(report));
      for (const cell of passed) {
        const outcome = report.outcomes.find((o) => o.provider === boxProvider(cell.provider));
        const ok = report.ok && outcome !== undefined && outcome.status !== 'failed' && outcome.status !== 'skipped';
        cell.published = { target: where, ok, released: report.released, dry_run: report.dryRun, ...(ok ? {} : { error: outcome?.detail ?? 'not published' }) };
      }
    } catch (error) {
      console.log(`FAILED to publish ${box}: ${firstLine(error)}`);
      for (const cell of passed) cell.published = { target: where, ok: false, released: false, dry_run: options.dryRun, error: firstLine(error) };
    }
  }
}

/** 0 when no cell failed and every publish went through; else 1. */
export function nightExitCode(cells: CellReport[]): number {
  return cells.some((c) => c.status === 'failed' || c.published?.ok === false) ? 1 : 0;
}

/** Box, then provider: the order of every report. */
export function sortCells(cells: CellReport[]): CellReport[] {
  return [...cells].sort((a, b) => a.box.localeCompare(b.box) || a.provider.localeCompare(b.provider));
}
