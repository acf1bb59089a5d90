// Step record: the build record, then the box and its files put in place in
// boxes/<org>/<box>/<version>/, the box last (src/store/staging.ts).
import { statSync } from 'node:fs';
import path from 'node:path';
import { runCaptured } from '../exec/captured.ts';
import { boxProvider } from '../render/context.ts';
import { REPO_ROOT } from '../render/render.ts';
import { writeBuildRecord, type BuildRecord } from '../store/build-record.ts';
import { putInPlace, stagedFiles } from '../store/staging.ts';
import type { BuildState } from './build-state.ts';

export async function recordStep(state: BuildState): Promise<void> {
  const { target, env } = state;
  const { definition, box } = target.loaded;
  const provider = boxProvider(target.provider);
  const size = statSync(state.stagedBox!).size;
  const { content } = state.guest!;
  const record: BuildRecord = {
    box,
    name: `${definition.org}/${definition.box_name}`,
    version: env.version,
    provider,
    file: path.basename(state.stagedBox!),
    size,
    sha256: state.sha256!,
    compression: state.compression!,
    ...(state.compressionLevel !== undefined ? { compression_level: state.compressionLevel } : {}),
    ...(state.compressor !== undefined ? { compressor: state.compressor } : {}),
    git_revision: await gitRevision(),
    packer_version: env.packer.version,
    // As the input hash has it: one reading, so the record and its hash cannot disagree.
    hypervisor_version: state.inputs!.hypervisor_version,
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
    ...(state.archive ? { archive: state.archive } : {}),
    kernel: state.guest!.kernel,
    ...(state.guest!.docker ? { docker: state.guest!.docker } : {}),
    packages: { file: path.basename(stagedFiles(state.staging!).packageManifest), count: state.guest!.packages },
    content: { ...content, box_ratio: Math.round((size / content.tar_compressed_bytes) * 1000) / 1000 },
    ...(state.inputs?.input_hash ? { input_hash: state.inputs.input_hash } : {}),
    ...(state.inputs ? { inputs: state.inputs.inputs } : {}),
  };
  writeBuildRecord(stagedFiles(state.staging!).record, record);
  state.record = record;
  state.boxFile = putInPlace(state.staging!);
}

async function gitRevision(): Promise<string> {
  const head = await runCaptured('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD'], { timeoutMs: 10_000 });
  if (head.exitCode !== 0) return 'unknown';
  const dirty = await runCaptured('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no'], { timeoutMs: 10_000 });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? '-dirty' : ''}`;
}
