// One box for one provider, from definition to a verified, tested .box: render -> inputs -> build
// (Packer) -> package -> smoke -> record, each a step with a time limit and a cleanup (Packer's
// multistep, over a state bag). The box is verified and staged beside its final place, smoke-tested
// there, and only then renamed into boxes/<org>/<box>/<version>/ with its checksum, record and test
// results, so a failed or untested build never touches the last good box.
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../exec/timeouts.ts';
import { runSteps, type Step, type StepsReport } from '../exec/steps.ts';
import { withBuildLock } from './build-lock.ts';
import { boxDirectory, BUILD_STEPS, type BuildEnvironment, type BuildResult, type BuildState, type BuildStepName, type BuildTarget } from './build-state.ts';
import { removeWorkDir, renderStep } from './step-render.ts';
import { inputsStep, progressBar } from './step-inputs.ts';
import { packerStep, removePackerLeftovers } from './step-packer.ts';
import { packageStep, removeStaging, sayingDiskFull } from './step-package.ts';
import { smokeStep, SmokeTestFailedError } from './step-smoke.ts';
import { recordStep } from './step-record.ts';

// What other modules take from the build, as before the steps had files of their own.
export { boxDirectory, BUILD_STEPS, progressBar, SmokeTestFailedError };
export type { BuildEnvironment, BuildResult, BuildStepName, BuildTarget };

/** Builds one box for one provider. Never throws: the result says how it went. */
export async function buildTarget(target: BuildTarget, env: BuildEnvironment): Promise<BuildResult> {
  const id = `${target.loaded.box}-${target.provider}`;
  const state: BuildState = {
    target,
    env,
    logDir: path.join(env.logRoot, id),
    workDir: path.join(env.workRoot, `${id}-${env.runId}`),
    templateDir: path.join(env.workRoot, `${id}-${env.runId}`, 'template'),
    packerWorkDir: path.join(env.workRoot, `${id}-${env.runId}`, 'packer'),
    durations: {},
  };
  // The build's logs (Packer's among them) are its user's alone, whatever the umask.
  mkdirSync(state.logDir, { recursive: true, mode: 0o700 });
  chmodSync(state.logDir, 0o700);
  const timeouts = target.loaded.definition.timeouts;
  const limit = (name: keyof typeof timeouts) => parseDuration(timeouts[name]);
  const steps: Step<BuildState>[] = [
    { name: 'render', timeoutMs: limit('render'), run: renderStep, cleanup: removeWorkDir },
    { name: 'inputs', timeoutMs: limit('inputs'), run: inputsStep },
    { name: 'build', timeoutMs: limit('build'), run: packerStep, cleanup: removePackerLeftovers },
    { name: 'package', timeoutMs: limit('package'), run: sayingDiskFull(packageStep), cleanup: removeStaging },
    ...(env.smokeTest ? [{ name: 'smoke', timeoutMs: limit('smoke'), run: smokeStep }] : []),
    { name: 'record', timeoutMs: limit('record'), run: sayingDiskFull(recordStep) },
  ];
  // The steps' report, a failed build's too: the nightly report shows which step failed and how long each took.
  let finishedSteps: StepsReport | undefined;
  try {
    const report = await withBuildLock(env.cacheDir, target.loaded.box, target.provider, () => runSteps(steps, state, {
      signal: env.signal,
      timeoutOverrides: env.timeoutOverrides,
      runTimeoutMs: env.timeoutOverrides.run ?? limit('run'),
      onEvent: (event) => {
        if (event.type === 'step-start') env.onStep?.(event.step as BuildStepName, target);
        // The record step writes the durations of the steps before it.
        if (event.type === 'step-end') state.durations[event.record.name] = Math.round(event.record.durationMs / 100) / 10;
      },
      onFinish: (finished) => (finishedSteps = finished),
    }), { signal: env.signal, onWait: (message) => env.onLine?.(message, target) });
    return { target, ok: true, record: state.record!, boxFile: state.boxFile!, ...(state.smoke ? { smoke: state.smoke } : {}), report, logDir: state.logDir };
  } catch (error) {
    return { target, ok: false, error, ...(finishedSteps ? { report: finishedSteps } : {}), logDir: state.logDir };
  }
}
