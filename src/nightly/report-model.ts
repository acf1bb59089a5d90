// The nightly report as data: what `boxsmith nightly` writes to reports/<version>/report.json (and
// reports/latest/), what a CI runner's partial report holds, what `report:merge` joins, and what the
// JUnit and HTML renderings are made from. One cell per box x provider. Field meanings are
// documented in docs/nightly.md; a change of meaning needs a new REPORT_SCHEMA.
import type { Provider } from '../definitions/schema.ts';
import type { ArchiveSuite } from '../inputs/archive-state.ts';
import type { BuildRecord } from '../store/build-record.ts';
import type { PackageChange } from '../store/manifest.ts';

export const REPORT_SCHEMA = 'boxsmith-nightly-report/1';

/**
 * passed: built, smoke-tested (and published, when a target was given) tonight;
 * failed: a stage failed (see `stages` and `error`); skipped: this host cannot build it (`reason`);
 * unchanged: its inputs hash the same as its last good build (`unchanged_since`), nothing was built.
 */
export type CellStatus = 'passed' | 'failed' | 'skipped' | 'unchanged';

/** A stage of one cell: the build steps (render, inputs, build, package, smoke, record), then publish. */
export interface StageReport {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  seconds?: number;
  /** The first line of the error, for a failed stage. */
  error?: string;
}

export interface SmokeCheckReport {
  name: string;
  passed: boolean;
  duration_s: number;
  expected?: string;
  actual?: string;
}

// Defined where they are made: src/build and src/store need them and must not import src/nightly,
// which imports them.
export type { ArchiveSuite } from '../inputs/archive-state.ts';
export type { PackageChange } from '../store/manifest.ts';

/** The guest's used bytes, its files as a tar and that tar compressed as the box is; the box's size over the last: as the build record has them. */
export type BoxContent = NonNullable<BuildRecord['content']>;

export interface CellReport {
  /** The definition, e.g. debian-12. */
  box: string;
  /** org/box_name, e.g. phusion/debian-12-amd64. */
  name: string;
  provider: Provider;
  status: CellStatus;
  /** skipped: why this host cannot build it; failed: the first line of the error. */
  reason?: string;
  /** The box version this cell's box has: tonight's, or for `unchanged` the last good one. */
  box_version?: string;
  unchanged_since?: string;
  /** sha256 over the named input hashes (see src/build/box-inputs.ts: the build computes them, its record carries them). */
  input_hash?: string;
  /** The inputs whose hash differs from the last good build's ("no earlier build" when none). */
  changed_inputs?: string[];
  stages: StageReport[];
  artifact?: { file: string; size: number; sha256: string };
  smoke?: { passed: boolean; checks: SmokeCheckReport[] };
  /** The build's log folder, as the run wrote it (absolute, or relative to the report folder when merged from a CI artifact). */
  logs?: string;
  archive?: ArchiveSuite[];
  kernel?: string;
  docker?: string;
  /** The guest's files as its build record has them (src/store/build-record.ts `content`). */
  content?: BoxContent;
  /** Package changes against the box's previous version (`since`). */
  package_changes?: { since: string; changes: PackageChange[] };
  published?: { target: string; ok: boolean; released: boolean; dry_run: boolean; error?: string };
  /** The runner that made this cell (a host name, or a CI job name). */
  runner?: string;
}

export interface NightlyReport {
  schema: typeof REPORT_SCHEMA;
  /** The version tonight's boxes get (e.g. 20261202.031500.0). */
  version: string;
  started_at: string;
  finished_at: string;
  /** Sorted by box, then provider (qemu, virtualbox, vmware). */
  cells: CellReport[];
  /** 0 when no cell failed and every publish succeeded. */
  exit_code: number;
}
