// What builds left in boxes/<org>/<box_name>/<version>/ and whether it may be published: each
// `<provider>.box` with its checksum file, its build record and the smoke test's verdict. A box
// is published only when all three agree with the file and the smoke test passed.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { displayPath } from '../definitions/errors.ts';
import { PACKER_SOURCES } from '../render/context.ts';
import { hashFile } from '../inputs/checksum.ts';
import { BoxStoreError, boxFiles, boxVersionsDirectory, builtProviders, builtVersions, readChecksumFile, versionDirectory } from '../store/box-store.ts';
import { readBuildRecord, type BuildRecord } from '../store/build-record.ts';
import { PublishError } from './errors.ts';

/** One provider's box of one version, checked against its record and ready to publish. */
export interface BoxArtifact {
  /** Vagrant's provider name: virtualbox, vmware_desktop, libvirt. */
  provider: string;
  /** Vagrant's architecture name: amd64, arm64, i386. */
  architecture: string;
  file: string;
  size: number;
  /** Lower-case hex, as recorded by the build and verified against the file. */
  sha256: string;
  record: BuildRecord;
  smoke: SmokeVerdict;
}

export interface SmokeVerdict {
  passed: boolean;
  /** e.g. `passed (7 checks)`, `failed: docker-run, memory-cgroup`, `not smoke-tested (no libvirt.smoke.json)`. */
  summary: string;
}

export interface SkippedProvider {
  provider: string;
  reason: string;
}

/** A version of a box as built: what will be published, and what will not and why. */
export interface BuiltVersion {
  /** `org/box_name`, the name users give vagrant. */
  name: string;
  org: string;
  boxName: string;
  version: string;
  dir: string;
  artifacts: BoxArtifact[];
  skipped: SkippedProvider[];
  /** One line per box published without a passed smoke test (--allow-untested). */
  warnings: string[];
}

export interface CollectOptions {
  boxesDir: string;
  org: string;
  boxName: string;
  /** The version to publish; default: the newest version with a finished build. */
  version?: string;
  /** The definition's `os.arch`. */
  arch: string;
  allowUntested: boolean;
}

/** Vagrant's architecture names (those of Go's GOARCH) for the names definitions and uname use. */
const VAGRANT_ARCHITECTURES: Record<string, string> = {
  amd64: 'amd64',
  x86_64: 'amd64',
  arm64: 'arm64',
  aarch64: 'arm64',
  i386: 'i386',
  i686: 'i386',
};

export function vagrantArchitecture(arch: string): string {
  const name = VAGRANT_ARCHITECTURES[arch];
  if (!name) throw new PublishError(`architecture "${arch}" has no Vagrant name (known: ${Object.keys(VAGRANT_ARCHITECTURES).join(', ')})`);
  return name;
}

/**
 * Finds the boxes of one version and sorts them into publishable and skipped. Throws PublishError
 * when there is no such version, or when a box disagrees with its record or checksum file (a box
 * that changed after its build is never published, whatever the flags).
 */
export function collectBuiltVersion(options: CollectOptions): BuiltVersion {
  const { boxesDir, org, boxName } = options;
  const name = `${org}/${boxName}`;
  const versions = builtVersions(boxesDir, org, boxName);
  const version = options.version ?? versions[0];
  const versionsDir = boxVersionsDirectory(boxesDir, org, boxName);
  const known = versions.length ? `built versions: ${versions.join(', ')}` : 'no version of it has been built';
  if (!version) throw new PublishError(`nothing to publish: ${displayPath(versionsDir)} holds no built box of ${name} (build it first with \`npm run build:box\`)`);
  const dir = versionDirectory(boxesDir, org, boxName, version);
  if (!versions.includes(version)) throw new PublishError(`${name} has no built version ${version} in ${displayPath(versionsDir)} (${known})`);

  const architecture = vagrantArchitecture(options.arch);
  const built: BuiltVersion = { name, org, boxName, version, dir, artifacts: [], skipped: [], warnings: [] };
  for (const provider of builtProviders(dir)) {
    const files = boxFiles(dir, provider);
    if (!existsSync(files.record)) {
      // The build puts the record in place before the box: a box without one is not a build's.
      built.skipped.push({ provider, reason: `no build record ${path.basename(files.record)} (the build did not finish)` });
      continue;
    }
    const file = files.box;
    // The record is what the box is verified against: nobody else may have been able to swap both.
    for (const written of [path.dirname(versionsDir), versionsDir, dir, files.record, file]) writableOnlyByOwner(written);
    const record = asPublishError(() => readBuildRecord(files.record, { name, version, provider }));
    checkAgainstRecord(file, record);
    const smoke = smokeVerdict(dir, provider, version);
    const artifact: BoxArtifact = { provider, architecture, file, size: record.size, sha256: record.sha256, record, smoke };
    if (smoke.passed) {
      built.artifacts.push(artifact);
    } else if (options.allowUntested) {
      built.artifacts.push(artifact);
      built.warnings.push(`WARNING: publishing ${name} ${version} ${provider} although it did not pass its smoke test: ${smoke.summary} (--allow-untested)`);
    } else {
      built.skipped.push({ provider, reason: `${smoke.summary}; only boxes that passed their smoke test are published (--allow-untested overrides)` });
    }
  }
  return built;
}

/** What the store found wrong, as publish's error (one line, exit 1). */
function asPublishError<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof BoxStoreError) throw new PublishError(error.message);
    throw error;
  }
}

function writableOnlyByOwner(file: string): void {
  const stat = statSync(file);
  const owners = [process.getuid?.(), 0];
  if ((stat.mode & 0o022) !== 0 || !owners.includes(stat.uid)) {
    throw new PublishError(
      `${displayPath(file)} could have been changed by another user (mode ${(stat.mode & 0o777).toString(8)}, owner uid ${stat.uid}): a box and its build record are trusted only when no one else can write them; rebuild it`,
    );
  }
}

/** The cheap checks (size, checksum file); the digest of the bytes is checked by verifyArtifact. */
function checkAgainstRecord(file: string, record: BuildRecord): void {
  const size = statSync(file).size;
  if (size !== record.size) {
    throw new PublishError(`${displayPath(file)} has ${size} bytes but its build record says ${record.size}: the box changed after it was built; rebuild it`);
  }
  const listed = asPublishError(() => readChecksumFile(file));
  if (listed !== record.sha256) {
    throw new PublishError(`${displayPath(boxFiles(path.dirname(file), record.provider).checksum)} (sha256:${listed}) disagrees with the build record (sha256:${record.sha256}); rebuild the box`);
  }
}

/** Reads every byte of the box: the file must be exactly what the build recorded. */
export async function verifyArtifact(artifact: BoxArtifact, signal?: AbortSignal): Promise<void> {
  const { hex, size } = await hashFile(artifact.file, 'sha256', signal);
  if (hex !== artifact.sha256 || size !== artifact.size) {
    throw new PublishError(
      `${displayPath(artifact.file)} has sha256 ${hex} but its build record says ${artifact.sha256}: the box changed after it was built; rebuild it`,
    );
  }
}

interface SmokeResultFile {
  passed?: unknown;
  provider?: unknown;
  version?: unknown;
  error?: unknown;
  checks?: Array<{ name?: unknown; passed?: unknown }>;
}

/** The smoke test's verdict from `<provider>.smoke.json`; anything but a clear pass is no pass. */
export function smokeVerdict(dir: string, provider: string, version: string): SmokeVerdict {
  const file = boxFiles(dir, provider).smokeResult;
  const shown = path.basename(file);
  if (!existsSync(file)) return { passed: false, summary: `not smoke-tested (no ${shown})` };
  let result: SmokeResultFile;
  try {
    result = JSON.parse(readFileSync(file, 'utf8')) as SmokeResultFile;
  } catch {
    return { passed: false, summary: `${shown} is not readable JSON` };
  }
  // The smoke stage may name the provider as Vagrant does (libvirt) or as boxsmith does (qemu).
  const providerNames = new Set([provider, ...Object.entries(PACKER_SOURCES).filter(([, source]) => source.boxProvider === provider).map(([name]) => name)]);
  if (typeof result.provider === 'string' && !providerNames.has(result.provider)) {
    return { passed: false, summary: `${shown} is the result for provider ${result.provider}` };
  }
  if (typeof result.version === 'string' && result.version !== version) {
    return { passed: false, summary: `${shown} is the result for version ${result.version}` };
  }
  const checks = Array.isArray(result.checks) ? result.checks : [];
  if (result.passed === true) return { passed: true, summary: `passed (${checks.length} checks)` };
  const failed = checks.filter((check) => check.passed !== true).map((check) => String(check.name ?? '?'));
  const why = failed.length ? `failed: ${failed.join(', ')}` : typeof result.error === 'string' ? `failed: ${result.error}` : 'failed';
  return { passed: false, summary: `smoke test ${why}` };
}
