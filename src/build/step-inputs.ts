// Step inputs: what Packer starts from: the ISO through the cache, or the debootstrap base image;
// Docker's static .tgz through the same cache when the box takes Docker from it; and the state of
// the archive the box is built against, for the record and the base image's key.
import path from 'node:path';
import type { StepContext } from '../exec/steps.ts';
import { archiveState } from '../inputs/archive-state.ts';
import { ensureIso } from '../inputs/iso.ts';
import { dockerStaticFile } from '../definitions/load.ts';
import { ensureDockerStatic } from '../inputs/docker-static.ts';
import { REPO_ROOT } from '../render/render.ts';
import { ensureBaseImage } from './base-image.ts';
import { StageLog } from '../exec/stage-log.ts';
import { stepRunner, type BuildState } from './build-state.ts';

export async function inputsStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { definition, box } = state.target.loaded;
  // Shown throttled while the step runs, so also kept in the step's log.
  const warn = (message: string) => {
    const log = new StageLog(path.join(state.logDir, 'inputs.log'));
    log.note(message);
    log.close();
    state.env.onLine?.(message, state.target);
  };
  if (definition.base.kind === 'iso') {
    // Recorded when the build host can read it; the guest's upgrade (scripts/upgrade.sh) does not
    // depend on it, and a VMware guest reaches its archive without the host.
    // The render step read it for the input hash (box-inputs.ts): the same reading goes into the record.
    // When it could not, the render step has said so (`input archive unknown`) and the record has none.
    if (!state.inputs?.unknown.archive)
      state.archive =
        state.inputs?.archive ??
        (await archiveState(definition).catch((error: Error) => {
          warn(`${box}: the archive state is not recorded: ${error.message}`);
          return undefined;
        }));
    state.iso = await ensureIso(definition.base.iso!, {
      cacheDir: state.env.cacheDir,
      signal: ctx.signal,
      onWarning: warn,
      onProgress: (progress) => state.env.onLine?.(`${definition.base.iso!.file} ${progressBar(progress.received, progress.total)}`, state.target),
    });
  } else {
    // The base image's cache key: a debootstrap box cannot be built without its archive anyway.
    // As the input hash read it, so the image's key and the record agree with it; read again if that failed.
    state.archive = state.inputs?.archive ?? (await archiveState(definition));
    state.baseImage = await ensureBaseImage({
      box,
      definition,
      archive: state.archive,
      cacheDir: state.env.cacheDir,
      root: REPO_ROOT,
      aptProxy: state.env.aptCache?.hostUrl,
      runner: stepRunner(state, 'inputs', ctx),
      onWarning: warn,
      signal: ctx.signal,
      onWait: warn,
      accelerator: state.env.accelerator?.accelerator ?? 'tcg',
    });
    state.env.onLine?.(`base image ${state.baseImage.cached ? 'from the cache' : 'made'}: ${state.baseImage.path}`, state.target);
  }
  const { docker } = definition;
  if (docker.install && docker.source === 'static') {
    const file = dockerStaticFile(docker.static!);
    state.dockerStatic = await ensureDockerStatic(docker.static!, {
      cacheDir: state.env.cacheDir,
      signal: ctx.signal,
      onWarning: warn,
      onProgress: (progress) => state.env.onLine?.(`${file} ${progressBar(progress.received, progress.total)}`, state.target),
    });
  }
}


/** `[########------------]  40%  265 of 662 MiB`, or just the MiB when the size is unknown. */
export function progressBar(received: number, total: number | undefined, width = 20): string {
  const mib = (bytes: number) => (bytes / 1048576).toFixed(0);
  if (!total) return `${mib(received)} MiB`;
  const fraction = Math.min(1, received / total);
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${mib(received)} of ${mib(total)} MiB`;
}
