// The build record, `<provider>.json` beside the box: what was built from what, by which tools, its
// size and digest, and how its smoke test went. Publish trusts a box because it matches its record,
// so a record is read only through readBuildRecord, which checks every field it relies on.
import { readFileSync, writeFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv, type ErrorObject } from 'ajv';
import { displayPath } from '../definitions/errors.ts';
import { BOX_COMPRESSIONS } from '../definitions/names.ts';
import { BoxStoreError } from './box-store.ts';

const BuildRecordSchema = Type.Object({
  /** The definition's name (debian-12). */
  box: Type.String({ minLength: 1 }),
  /** `org/box_name`, the name users give vagrant. */
  name: Type.String({ pattern: '^[^/]+/[^/]+$' }),
  version: Type.String({ minLength: 1 }),
  /** Vagrant's provider name: libvirt, virtualbox, vmware_desktop. */
  provider: Type.String({ minLength: 1 }),
  /** The box's file name in its version folder. */
  file: Type.String({ pattern: '^[^/]+\\.box$' }),
  size: Type.Integer({ minimum: 1 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  /** How the box file is compressed (absent from records before boxsmith packaged boxes itself). */
  compression: Type.Optional(Type.Union([...BOX_COMPRESSIONS, 'none'].map((name) => Type.Literal(name)))),
  /** The compressor's level, where boxsmith packaged the box (absent from records before it was chosen). */
  compression_level: Type.Optional(Type.Integer({ minimum: 0 })),
  /** The program that compressed it (bgzip, pigz, zstd, xz) or zlib: the same level is different bytes in each (absent from records before). */
  compressor: Type.Optional(Type.String({ pattern: '^[a-z0-9_-]+$' })),
  git_revision: Type.String(),
  packer_version: Type.String(),
  hypervisor_version: Type.String(),
  accelerator: Type.Optional(Type.String()),
  base: Type.Object({
    kind: Type.String(),
    iso: Type.Optional(Type.String()),
    base_image_sha256: Type.Optional(Type.String()),
    base_image_cached: Type.Optional(Type.Boolean()),
  }),
  run_id: Type.String(),
  built_at: Type.String(),
  durations_s: Type.Record(Type.String(), Type.Number()),
  smoke_test: Type.Union([Type.Object({ passed: Type.Boolean(), checks: Type.Integer({ minimum: 0 }) }), Type.Literal('skipped')], {
    description: '{"passed": true or false, "checks": a count} or "skipped"',
  }),
  // Absent from records of builds before boxsmith took them; `archive` also when an installer
  // box's archive could not be read from the build host.
  /** The archive's suites (src/inputs/archive-state.ts) as the build found them when it started. */
  archive: Type.Optional(Type.Array(Type.Object({ suite: Type.String(), date: Type.String(), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) }))),
  /** The kernel the box ran at the end of its build (`uname -r`). */
  kernel: Type.Optional(Type.String()),
  /** The Docker daemon's version, when the box has Docker. */
  docker: Type.Optional(Type.String()),
  /** sha256 over `inputs` (src/build/box-inputs.ts); absent when an input could not be found out. */
  input_hash: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  /** The box's inputs by name, each a sha256: what the nightly compares to tell what changed. */
  inputs: Type.Optional(Type.Record(Type.String(), Type.String({ pattern: '^[0-9a-f]{64}$' }))),
  /**
   * The guest's files at the end of its build (scripts/content-size.sh): the bytes its disk's
   * filesystems use, the same files as a tar, that tar compressed as the box is (on the build host
   * or, for VMware, in the guest), and the box's size over it. Absent from records before.
   */
  content: Type.Optional(
    Type.Object({
      used_bytes: Type.Integer({ minimum: 0 }),
      tar_bytes: Type.Integer({ minimum: 0 }),
      tar_compressed_bytes: Type.Integer({ minimum: 1 }),
      compression: Type.Union(BOX_COMPRESSIONS.map((name) => Type.Literal(name))),
      level: Type.Integer(),
      compressed_on: Type.Union([Type.Literal('host'), Type.Literal('guest')]),
      box_ratio: Type.Number({ exclusiveMinimum: 0 }),
    }),
  ),
  /** The package manifest beside the box (./manifest.ts). */
  packages: Type.Optional(Type.Object({ file: Type.String({ pattern: '^[^/]+\\.packages\\.tsv$' }), count: Type.Integer({ minimum: 0 }) })),
});

export type BuildRecord = Static<typeof BuildRecordSchema>;

const validate = new Ajv({ allErrors: true, strict: true, verbose: true }).compile<BuildRecord>(BuildRecordSchema);

/** The staged record: written with the box's files, renamed into place with them (./staging.ts). */
export function writeBuildRecord(file: string, record: BuildRecord): void {
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * Reads and checks a build record; with `expected`, also that it is the record of that box.
 * Throws BoxStoreError, one line naming the file, when it is not.
 */
export function readBuildRecord(file: string, expected?: { name: string; version: string; provider: string }): BuildRecord {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new BoxStoreError(`${displayPath(file)} is not a readable build record: ${(error as Error).message}`);
  }
  return parseBuildRecord(text, displayPath(file), expected);
}

/** A build record's text (a file's, or one read from a remote catalog tree), checked; `source` names it in messages. */
export function parseBuildRecord(text: string, source: string, expected?: { name: string; version: string; provider: string }): BuildRecord {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new BoxStoreError(`${source} is not a readable build record: ${(error as Error).message}`);
  }
  if (!validate(data)) throw new BoxStoreError(`${source} is not a build record: ${describeErrors(validate.errors ?? [])}`);
  if (expected) {
    const problems = (['name', 'version', 'provider'] as const).filter((key) => data[key] !== expected[key]).map((key) => `${key} is "${data[key]}", not ${expected[key]}`);
    if (problems.length) throw new BoxStoreError(`${source} does not describe this box: ${problems.join('; ')}`);
  }
  return data;
}

/** One problem per field; for a field that may take two shapes, the union's verdict (Ajv reports it last). */
function describeErrors(errors: ErrorObject[]): string {
  const byField = new Map<string, string>();
  for (const error of errors) {
    const missing = error.keyword === 'required' ? `/${(error.params as { missingProperty: string }).missingProperty}` : '';
    const field = `${error.instancePath}${missing}`.slice(1).replaceAll('/', '.') || 'the record';
    const shapes = error.keyword === 'anyOf' ? (error.parentSchema as { description?: string } | undefined)?.description : undefined;
    byField.set(field, missing ? 'is missing' : shapes ? `must be ${shapes}` : `${error.message ?? 'is wrong'}`);
  }
  return [...byField].map(([field, message]) => `${field} ${message}`).join('; ');
}
