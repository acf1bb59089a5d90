// Step smoke: the staged box smoke-tested as its users will use it (src/smoke/).
import path from 'node:path';
import type { StepContext } from '../exec/steps.ts';
import { smokeTest, type SmokeResult } from '../smoke/smoke.ts';
import type { BuildState } from './build-state.ts';

export async function smokeStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { env, target } = state;
  state.smoke = await smokeTest({
    loaded: target.loaded,
    provider: target.provider,
    boxFile: state.stagedBox!,
    sha256: state.sha256!,
    version: env.version,
    logDir: path.join(state.logDir, 'smoke'),
    signal: ctx.signal,
    ...(env.watchdog ? { watchdog: env.watchdog } : {}),
    accelerator: env.accelerator?.accelerator ?? 'tcg',
    ...(env.dockerImage ? { dockerImage: env.dockerImage } : {}),
    timeLimitMs: ctx.remainingMs(),
    ...(env.graceMs !== undefined ? { graceMs: env.graceMs } : {}),
    onLine: (line) => env.onLine?.(line, target),
  });
  if (!state.smoke.passed) throw new SmokeTestFailedError(state.smoke);
}

export class SmokeTestFailedError extends Error {
  constructor(readonly result: SmokeResult) {
    const failed = result.checks.filter((c) => !c.passed);
    super(
      result.error
        ? `smoke test could not run its checks: ${result.error}`
        : `smoke test failed ${failed.length} of ${result.checks.length} checks:\n${failed.map((c) => `  ${c.name}: expected ${c.expected}; got ${c.actual.split('\n')[0] ?? ''} (command: ${c.command})`).join('\n')}`,
    );
    this.name = 'SmokeTestFailedError';
  }
}
