// What a nightly builds and why. Each box x provider is skipped (this host cannot build it),
// unchanged (its input hash equals its last good build's: nothing is built, nothing boots) or
// built (with the inputs that changed). The last good build is the newest of: the newest version in
// the local boxes/ with a good record, and, for a static catalog tree target, the newest record
// the tree holds (published beside each box, src/publish/static-target.ts), which is what an
// ephemeral CI runner has. Vagrant Cloud and HCP hold no build records: for them the local boxes/
// is what a nightly compares with (on ephemeral runners every cell then builds).
import { existsSync } from 'node:fs';
import { boxInputs, changedInputs, type BoxInputs } from '../build/box-inputs.ts';
import { readBuildRecord, type BuildRecord } from '../store/build-record.ts';
import { planBuilds } from '../build/run.ts';
import type { LoadedDefinition } from '../definitions/load.ts';
import type { Provider } from '../definitions/schema.ts';
import { archiveState, type ArchiveSuite } from '../inputs/archive-state.ts';
import { isoUnavailable, type IsoSpec } from '../inputs/iso.ts';
import { dockerStaticUnavailable, type DockerStaticSpec } from '../inputs/docker-static.ts';
import type { PackerVersion } from '../packer/version.ts';
import { publishedRecords } from '../publish/static-target.ts';
import { remotePublishedRecords } from '../publish/rclone-target.ts';
import { redactorFor } from '../publish/secrets.ts';
import { formatTarget, type PublishTarget } from '../publish/target.ts';
import { boxProvider } from '../render/context.ts';
import { boxFiles, builtVersions, compareVersions, versionDirectory } from '../store/box-store.ts';

/** The runner labels a CI engine sends each provider's builds to (.github/workflows/nightly.yml). */
export const RUNNER_LABELS: Record<Provider, string[]> = {
  qemu: ['ubuntu-latest'],
  virtualbox: ['self-hosted', 'virtualbox'],
  vmware: ['self-hosted', 'vmware'],
};

/**
 * The container a provider's build job runs in: qemu builds on a hosted runner, in the README's
 * host (Debian 12, root; privileged for /dev/kvm and loop devices); the self-hosted VirtualBox and
 * VMware runners are such hosts themselves.
 */
export const RUNNER_CONTAINERS: Partial<Record<Provider, { image: string; options: string }>> = {
  qemu: { image: 'debian:12', options: '--privileged' },
};

export interface LastGoodBuild {
  record: BuildRecord;
  /** The box file (local) or where the target holds it. */
  file: string;
  /** `boxes/` or the target (`static:DIR`). */
  from: string;
}

export interface CellPlan {
  loaded: LoadedDefinition;
  box: string;
  provider: Provider;
  decision: 'build' | 'unchanged' | 'skipped';
  /** skipped: why this host cannot build it; unchanged: `unchanged since V`; build: what changed. */
  reason: string;
  changed_inputs?: string[];
  inputs?: BoxInputs;
  last?: LastGoodBuild;
}

export interface PlanOptions {
  boxes: LoadedDefinition[];
  /** Only these cells (`--cell box:provider`); none: every cell of the boxes. */
  cells: { box: string; provider: Provider }[];
  force: boolean;
  target?: PublishTarget;
  boxesDir: string;
  packer: PackerVersion;
  /** A build that was not smoke-tested counts as good (the nightly runs with --no-test). */
  untestedIsGood: boolean;
  /** Planning for CI runners: a provider whose hypervisor this host lacks is its runner's to build, not skipped. */
  forRunners: boolean;
  /** rclone targets: rclone's output while the plan reads the published build records goes below it. */
  logsDir?: string;
  readArchive?: (loaded: LoadedDefinition) => Promise<ArchiveSuite[]>;
  /** Why this host cannot get an installer box's ISO now, or undefined (default: isoUnavailable). */
  checkIso?: (iso: IsoSpec) => Promise<string | undefined>;
  /** Why this host cannot get a box's static Docker .tgz now, or undefined (default: dockerStaticUnavailable). */
  checkDockerStatic?: (spec: DockerStaticSpec) => Promise<string | undefined>;
}

export async function planNight(options: PlanOptions): Promise<CellPlan[]> {
  const { targets, skipped } = planBuilds(options.boxes, []);
  const wanted = (box: string, provider: Provider) => !options.cells.length || options.cells.some((c) => c.box === box && c.provider === provider);
  const cells: CellPlan[] = [];
  // One fetch of the archive state per box, shared by its providers; none for a box this host skips.
  const archives = new Map<string, Promise<ArchiveSuite[]>>();
  const readArchive = (loaded: LoadedDefinition) => {
    if (!archives.has(loaded.box)) archives.set(loaded.box, (options.readArchive ?? ((l: LoadedDefinition) => archiveState(l.definition)))(loaded));
    return archives.get(loaded.box)!;
  };
  for (const skip of skipped) {
    if (!wanted(skip.box, skip.provider)) continue;
    const loaded = options.boxes.find((b) => b.box === skip.box)!;
    cells.push(
      options.forRunners
        ? { loaded, box: skip.box, provider: skip.provider, decision: 'build', reason: `decided on its runner (${RUNNER_LABELS[skip.provider].join(', ')}): not on this host` }
        : { loaded, box: skip.box, provider: skip.provider, decision: 'skipped', reason: skip.reason },
    );
  }
  // A box whose ISO (or static Docker .tgz) this host cannot get would only fail at its inputs step:
  // skipped, saying how to supply it.
  const inputProblems = new Map<string, Promise<string | undefined>>();
  const inputProblem = (loaded: LoadedDefinition) => {
    const { base, docker } = loaded.definition;
    if (!inputProblems.has(loaded.box)) {
      const checkIso = options.checkIso ?? ((iso) => isoUnavailable(iso));
      const checkDocker = options.checkDockerStatic ?? ((spec) => dockerStaticUnavailable(spec));
      inputProblems.set(
        loaded.box,
        (async () =>
          (base.kind === 'iso' ? await checkIso(base.iso!) : undefined) ??
          (docker.install && docker.source === 'static' ? await checkDocker(docker.static!) : undefined))(),
      );
    }
    return inputProblems.get(loaded.box)!;
  };
  const remote = await remoteRecords(targets.filter(({ loaded, provider }) => wanted(loaded.box, provider)), options);
  for (const { loaded, provider } of targets) {
    if (!wanted(loaded.box, provider)) continue;
    const missingInput = await inputProblem(loaded);
    if (missingInput) {
      cells.push({ loaded, box: loaded.box, provider, decision: 'skipped', reason: missingInput });
      continue;
    }
    const inputs = await boxInputs(loaded, provider, { packer: options.packer, readArchive });
    const last = lastGoodBuild(loaded, provider, options, remote?.get(`${loaded.definition.org}/${loaded.definition.box_name} ${boxProvider(provider)}`));
    cells.push({ loaded, box: loaded.box, provider, inputs, ...(last ? { last } : {}), ...decide(inputs, last, options.force) });
  }
  return cells.sort((a, b) => a.box.localeCompare(b.box) || a.provider.localeCompare(b.provider));
}

function decide(inputs: BoxInputs, last: LastGoodBuild | undefined, force: boolean): Pick<CellPlan, 'decision' | 'reason' | 'changed_inputs'> {
  const unknown = Object.keys(inputs.unknown);
  let changed: string[];
  if (!last) changed = ['no earlier build'];
  else if (unknown.length) changed = unknown;
  else if (!last.record.inputs || !last.record.input_hash) changed = [`no input hash recorded in ${last.record.version}`];
  else if (last.record.input_hash === inputs.input_hash) changed = [];
  else changed = changedInputs(last.record.inputs, inputs.inputs);
  if (force) return { decision: 'build', reason: `forced (--force)${changed.length ? `; changed: ${changed.join(', ')}` : `; unchanged since ${last!.record.version}`}`, changed_inputs: changed };
  if (!changed.length) return { decision: 'unchanged', reason: `unchanged since ${last!.record.version}` };
  const why = !last
    ? 'no earlier build'
    : unknown.length
      ? `not known: ${unknown.map((name) => `${name} (${inputs.unknown[name]})`).join(', ')}`
      : `changed: ${changed.join(', ')}`;
  return { decision: 'build', reason: why, changed_inputs: changed };
}

/** A record of a build that finished, and passed its smoke test (or was not tested, where that is allowed). */
function isGood(record: BuildRecord, untestedIsGood: boolean): boolean {
  return record.smoke_test === 'skipped' ? untestedIsGood : record.smoke_test.passed;
}

export function lastGoodBuild(
  loaded: LoadedDefinition,
  provider: Provider,
  options: Pick<PlanOptions, 'boxesDir' | 'target' | 'untestedIsGood'>,
  /** The build records an rclone target holds for this cell, newest first (remoteRecords). */
  remotePublished?: BuildRecord[],
): LastGoodBuild | undefined {
  const { org, box_name: boxName } = loaded.definition;
  const vagrantProvider = boxProvider(provider);
  const candidates: LastGoodBuild[] = [];
  for (const version of builtVersions(options.boxesDir, org, boxName, vagrantProvider)) {
    const dir = versionDirectory(options.boxesDir, org, boxName, version);
    const files = boxFiles(dir, vagrantProvider);
    if (!existsSync(files.record)) continue;
    let record: BuildRecord;
    try {
      record = readBuildRecord(files.record);
    } catch {
      continue; // an unreadable record is no build to compare with: the cell builds
    }
    if (!isGood(record, options.untestedIsGood)) continue;
    candidates.push({ record, file: files.box, from: 'boxes/' });
    break;
  }
  if (options.target?.kind === 'static' && existsSync(options.target.root)) {
    const record = publishedRecords(options.target.root, org, boxName, vagrantProvider).find((r) => isGood(r, options.untestedIsGood));
    if (record) candidates.push({ record, file: `${org}/${boxName} ${record.version} ${vagrantProvider}`, from: formatTarget(options.target) });
  }
  const remoteRecord = remotePublished?.find((r) => isGood(r, options.untestedIsGood));
  if (remoteRecord && options.target) {
    candidates.push({ record: remoteRecord, file: `${org}/${boxName} ${remoteRecord.version} ${vagrantProvider}`, from: formatTarget(options.target) });
  }
  return candidates.sort((a, b) => compareVersions(b.record.version, a.record.version))[0];
}

/** The build records an rclone target holds for the cells planned, read in one rclone session. */
async function remoteRecords(cells: Array<{ loaded: LoadedDefinition; provider: Provider }>, options: PlanOptions): Promise<Map<string, BuildRecord[]> | undefined> {
  const { target } = options;
  if (target?.kind !== 'rclone' || !options.logsDir || !cells.length) return undefined;
  const redactor = redactorFor(process.env);
  for (const secret of target.remote.secrets) redactor.add(secret);
  const boxes = cells.map(({ loaded, provider }) => ({ org: loaded.definition.org, boxName: loaded.definition.box_name, provider: boxProvider(provider) }));
  return remotePublishedRecords({ remote: target.remote, logsDir: options.logsDir, redactor }, boxes);
}

/** One line per cell: box, provider, what happens and why. */
export function formatPlan(cells: CellPlan[]): string {
  const width = Math.max(0, ...cells.map((c) => `${c.box} ${c.provider}`.length));
  return cells.map((c) => `${c.decision.padEnd(9)} ${`${c.box} ${c.provider}`.padEnd(width)}  ${c.reason}`).join('\n');
}

/**
 * The plan as a CI engine fans it out: `include` is the build matrix (one job per cell, on the
 * runner labels of its provider), beside the cells that are not built and why, and the version
 * every runner builds under (`--version`).
 */
export function planMatrix(cells: CellPlan[], version: string) {
  return {
    version,
    include: cells
      .filter((c) => c.decision === 'build')
      .map((c) => ({
        box: c.box,
        provider: c.provider,
        cell: `${c.box}:${c.provider}`,
        runs_on: RUNNER_LABELS[c.provider],
        ...(RUNNER_CONTAINERS[c.provider] ? { container: RUNNER_CONTAINERS[c.provider] } : {}),
        reason: c.reason,
        changed_inputs: c.changed_inputs ?? [],
      })),
    unchanged: cells.filter((c) => c.decision === 'unchanged').map((c) => ({ box: c.box, provider: c.provider, since: c.last!.record.version, reason: c.reason })),
    skipped: cells.filter((c) => c.decision === 'skipped').map((c) => ({ box: c.box, provider: c.provider, reason: c.reason })),
  };
}
