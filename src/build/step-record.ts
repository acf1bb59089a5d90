// Step record: the build record, then the box and its files renamed into
// boxes/<org>/<box>/<version>/, the box last.
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCaptured } from '../exec/captured.ts';
import { boxProvider } from '../render/context.ts';
import { REPO_ROOT } from '../render/render.ts';
import { boxDirectory, type BuildRecord, type BuildState } from './build-state.ts';
import { hypervisorVersion } from './box-inputs.ts';

export async function recordStep(state: BuildState): Promise<void> {
  const { target, env } = state;
  const { definition, box } = target.loaded;
  const provider = boxProvider(target.provider);
  const record: BuildRecord = {
    box,
    name: `${definition.org}/${definition.box_name}`,
    version: env.version,
    provider,
    file: `${provider}.box`,
    size: statSync(state.stagedBox!).size,
    sha256: state.sha256!,
    git_revision: await gitRevision(),
    packer_version: env.packer.version,
    hypervisor_version: await hypervisorVersion(target.provider),
    ...(target.provider === 'qemu' && env.accelerator ? { accelerator: env.accelerator.accelerator } : {}),
    base: {
      kind: definition.base.kind,
      ...(state.iso ? { iso: definition.base.iso!.file } : {}),
      ...(state.baseImage ? { base_image_sha256: state.baseImage.sha256, base_image_cached: state.baseImage.cached } : {}),
    },
    run_id: env.runId,
    built_at: new Date().toISOString(),
    durations_s: { ...state.durations },
    smoke_test: state.smoke ? { passed: state.smoke.passed, checks: state.smoke.checks.length } : 'skipped',
    ...(state.inputs?.input_hash ? { input_hash: state.inputs.input_hash } : {}),
    ...(state.inputs ? { inputs: state.inputs.inputs } : {}),
  };
  writeFileSync(path.join(state.stagingDir!, `${provider}.json`), `${JSON.stringify(record, null, 2)}\n`);
  state.record = record;
  state.boxFile = promote(state.stagingDir!, boxDirectory(env.boxesDir, target, env.version), provider);
}

/**
 * Moves the staged files into the version folder, each by rename, the box last: its checksum,
 * record and test results are in place before it is.
 */
function promote(stagingDir: string, dir: string, provider: string): string {
  const sidecars = [`${provider}.box.sha256`, `${provider}.json`, `${provider}.smoke.json`, `${provider}.smoke.xml`];
  for (const name of sidecars) {
    if (existsSync(path.join(stagingDir, name))) renameSync(path.join(stagingDir, name), path.join(dir, name));
    else rmSync(path.join(dir, name), { force: true }); // a result of an earlier build does not describe this box
  }
  renameSync(path.join(stagingDir, `${provider}.box`), path.join(dir, `${provider}.box`));
  rmSync(stagingDir, { recursive: true, force: true });
  return path.join(dir, `${provider}.box`);
}


async function gitRevision(): Promise<string> {
  const head = await runCaptured('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD'], { timeoutMs: 10_000 });
  if (head.exitCode !== 0) return 'unknown';
  const dirty = await runCaptured('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no'], { timeoutMs: 10_000 });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? '-dirty' : ''}`;
}
