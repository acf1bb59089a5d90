// What a publish did, provider by provider, for the command line and for the nightly run's record.
// Reports hold names, versions, URLs without query strings and reasons: never a token.

export type ProviderStatus =
  /** Uploaded or copied, and verified. */
  | 'published'
  /** Already there with the same checksum: nothing was sent or copied. */
  | 'unchanged'
  /** Dry run: what would be done. */
  | 'planned'
  | 'failed'
  /** Not published (no finished build, smoke test not passed). */
  | 'skipped';

export interface ProviderOutcome {
  provider: string;
  architecture?: string;
  status: ProviderStatus;
  /** Where the box can be downloaded, or why it failed or was skipped. */
  detail: string;
}

export interface PublishReport {
  /** e.g. `static:/srv/boxes`, `vagrant-cloud (https://vagrantcloud.com)`. */
  target: string;
  name: string;
  version: string;
  dryRun: boolean;
  outcomes: ProviderOutcome[];
  /** The version is visible to users: the catalog was written, or the version released. */
  released: boolean;
  /** Everything asked for went through; false when any provider failed. */
  ok: boolean;
  /** Lines that must be seen: boxes published without a passed smoke test. */
  warnings: string[];
  /** Static target: the catalog files written. */
  catalogFiles?: string[];
  /** Static target: versions dropped by retention, whose files were deleted. */
  droppedVersions?: string[];
  /** When a hosted publish failed: how to pick up where it stopped. */
  resume?: string;
  /** Once released: the lines users put in a Vagrantfile or environment (src/publish/usage.ts). */
  usage?: string[];
}

/** A report before anything was done: nothing released, nothing succeeded yet. */
export function startReport(target: string, built: { name: string; version: string; warnings: string[] }, dryRun: boolean): PublishReport {
  return { target, name: built.name, version: built.version, dryRun, outcomes: [], released: false, ok: false, warnings: built.warnings };
}

export function formatReport(report: PublishReport): string {
  const lines = [`${report.dryRun ? 'dry run: would publish' : report.ok ? 'published' : 'FAILED to publish'} ${report.name} ${report.version} to ${report.target}`];
  const width = Math.max(...report.outcomes.map((o) => label(o).length), 0);
  for (const outcome of report.outcomes) {
    lines.push(`  ${label(outcome).padEnd(width)}  ${outcome.status.padEnd(9)}  ${outcome.detail}`);
  }
  for (const file of report.catalogFiles ?? []) lines.push(`  catalog: ${file}`);
  for (const version of report.droppedVersions ?? []) lines.push(`  ${report.dryRun ? 'would remove' : 'removed'} version ${version} (retention)`);
  if (!report.dryRun) lines.push(report.released ? `  ${report.version} is released` : `  ${report.version} is NOT released`);
  if (report.resume) lines.push(`  ${report.resume}`);
  if (report.ok && report.released && !report.dryRun) for (const line of report.usage ?? []) lines.push(`  ${line}`);
  return lines.join('\n');
}

function label(outcome: ProviderOutcome): string {
  return outcome.architecture ? `${outcome.provider} (${outcome.architecture})` : outcome.provider;
}
