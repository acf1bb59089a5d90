// What a smoke test found: written beside the box as JSON and JUnit XML, read by publish and the reports.

export interface CheckResult {
  name: string;
  command: string;
  expected: string;
  actual: string;
  exit_code: number | null;
  passed: boolean;
  duration_s: number;
}

export interface SmokeResult {
  box: string;
  name: string;
  version: string;
  provider: string;
  passed: boolean;
  /** Why the smoke test could not run its checks (vagrant up failed, interrupted), if so. */
  error?: string;
  checks: CheckResult[];
  durations_s: Record<string, number>;
  tested_at: string;
  vagrant_version: string;
}
