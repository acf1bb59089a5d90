// What every rendering of a nightly report shows alike: the box x provider matrix, the counts per
// status, one line per cell, and durations and sizes as people read them.
import type { Provider } from '../definitions/schema.ts';
import type { CellReport, CellStatus, NightlyReport } from './report-model.ts';

export const STATUSES: readonly CellStatus[] = ['passed', 'failed', 'skipped', 'unchanged'];

export interface ReportMatrix {
  /** Rows, sorted. */
  boxes: string[];
  /** Columns: the providers any cell has, sorted as the model sorts them. */
  providers: Provider[];
  cell(box: string, provider: Provider): CellReport | undefined;
  counts: Record<CellStatus, number>;
}

export function reportMatrix(report: NightlyReport): ReportMatrix {
  const cells = new Map(report.cells.map((cell) => [cellId(cell), cell]));
  const counts = Object.fromEntries(STATUSES.map((status) => [status, 0])) as Record<CellStatus, number>;
  for (const cell of report.cells) counts[cell.status] += 1;
  return {
    boxes: [...new Set(report.cells.map((cell) => cell.box))].sort(),
    providers: [...new Set(report.cells.map((cell) => cell.provider))].sort(),
    cell: (box, provider) => cells.get(cellId({ box, provider })),
    counts,
  };
}

/** `debian-12.qemu`: the JUnit class name of a cell and its key in the renderings. */
export function cellId(cell: { box: string; provider: string }): string {
  return `${cell.box}.${cell.provider}`;
}

/** "2 passed, 1 failed, 1 skipped, 0 unchanged" */
export function summaryLine(counts: Record<CellStatus, number>): string {
  return STATUSES.map((status) => `${counts[status]} ${status}`).join(', ');
}

/** The seconds all of a cell's stages took, or undefined when no stage has a time. */
export function cellSeconds(cell: CellReport): number | undefined {
  const timed = cell.stages.filter((stage) => stage.seconds !== undefined);
  return timed.length ? timed.reduce((sum, stage) => sum + stage.seconds!, 0) : undefined;
}

/** One line on a cell: "passed", "failed at build: <error>", "skipped: <reason>", "unchanged since <version>". */
export function cellOutcome(cell: CellReport): string {
  const why = cellReason(cell);
  if (!why) return cell.status;
  return `${cell.status}${cell.status === 'skipped' ? ': ' : ' '}${why}`;
}

/** cellOutcome without the status: "", "at build: <error>", "<reason>", "since <version>". */
export function cellReason(cell: CellReport): string {
  switch (cell.status) {
    case 'passed':
      return '';
    case 'failed': {
      const stage = cell.stages.find((s) => s.status === 'failed');
      const error = firstLine(cell.reason ?? stage?.error ?? '');
      return [stage ? `at ${stage.name}` : '', error].filter(Boolean).join(': ');
    }
    case 'skipped':
      return firstLine(cell.reason ?? '');
    case 'unchanged':
      return `since ${cell.unchanged_since ?? 'an earlier version'}`;
  }
}

export function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

/** 42 s, 3 min 05 s, 1 h 02 min */
export function formatSeconds(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${seconds < 10 ? Number(seconds.toFixed(1)) : whole} s`;
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, '0')} s`;
  return `${Math.floor(whole / 3600)} h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')} min`;
}

/** 512 B, 12.5 KiB, 431.2 MiB, 1.1 GiB */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The "Box sizes" table, one row per cell whose box has its guest's files counted: header, then rows of text. */
export function boxSizeTable(report: NightlyReport): { head: string[]; rows: string[][] } | undefined {
  const cells = report.cells.filter((cell) => cell.artifact && cell.content);
  if (!cells.length) return undefined;
  return {
    head: ['box', 'provider', 'box size', 'used in the guest', 'files as tar', 'tar compressed', 'box / tar compressed'],
    rows: cells.map((cell) => {
      const content = cell.content!;
      return [
        cell.box,
        cell.provider,
        formatBytes(cell.artifact!.size),
        formatBytes(content.used_bytes),
        formatBytes(content.tar_bytes),
        `${formatBytes(content.tar_compressed_bytes)} (${content.compression} -${content.level})`,
        `${content.box_ratio.toFixed(3)}x`,
      ];
    }),
  };
}
