// The layout of boxes/, known here alone: boxes/<org>/<box name>/<version>/<provider>.box, beside
// it <provider>.box.sha256, the build record <provider>.json (./build-record.ts), the package
// manifest <provider>.packages.tsv (./manifest.ts), the smoke results <provider>.smoke.json and
// .smoke.xml and publish's upload journal <provider>.uploads.json; a build's files wait in a
// staging folder beside them (./staging.ts). Versions are ordered as Vagrant orders them.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { displayPath } from '../definitions/errors.ts';
import { ChecksumFileError, parseChecksumFile } from '../inputs/checksum.ts';

/** What boxes/ holds is not what a build leaves there: one line naming the file. */
export class BoxStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BoxStoreError';
  }
}

/** A box version as Vagrant reads it (a RubyGems version): 1.2.3, 20261128.163000.0, 2.0.rc1 */
export function isBoxVersion(text: string): boolean {
  return /^\d+(\.[0-9A-Za-z]+)*$/.test(text);
}

/**
 * Orders versions as RubyGems (and so Vagrant) does: segment by segment, numbers numerically, a
 * letter segment (a pre-release: 1.0.a) before any number, missing segments as 0.
 */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.');
  const right = b.split('.');
  for (let index = 0; index < Math.max(left.length, right.length); index++) {
    const x = left[index] ?? '0';
    const y = right[index] ?? '0';
    const xNumeric = /^\d+$/.test(x);
    const yNumeric = /^\d+$/.test(y);
    let order: number;
    if (xNumeric && yNumeric) order = Math.sign(Number(BigInt(x) - BigInt(y)));
    else if (xNumeric) order = 1;
    else if (yNumeric) order = -1;
    else order = x < y ? -1 : x > y ? 1 : 0;
    if (order !== 0) return order;
  }
  return 0;
}

/** A version a build writes: 1 to 3 dotted numbers (1.2.3; the default is 20261128.163000.0). */
export function isNewBoxVersion(text: string): boolean {
  return /^\d+(\.\d+){0,2}$/.test(text);
}

/** boxes/<org>/<box name>/: the version folders of one box. */
export function boxVersionsDirectory(boxesDir: string, org: string, boxName: string): string {
  return path.join(boxesDir, org, boxName);
}

/** boxes/<org>/<box name>/<version>/ */
export function versionDirectory(boxesDir: string, org: string, boxName: string, version: string): string {
  return path.join(boxVersionsDirectory(boxesDir, org, boxName), version);
}

/** The files of one provider's box in a version folder (or in its staging folder). */
export interface BoxFiles {
  box: string;
  /** `<sha256>  <provider>.box`, as sha256sum writes and checks it. */
  checksum: string;
  /** The build record (./build-record.ts). */
  record: string;
  /** Every package installed in the box, `name<TAB>version<TAB>arch` (./manifest.ts). */
  packageManifest: string;
  smokeResult: string;
  /** The smoke result as JUnit XML, for CI. */
  smokeJunit: string;
  /** What publish uploaded where (src/publish/journal.ts). */
  uploadJournal: string;
}

/** `provider` is Vagrant's name: libvirt, virtualbox, vmware_desktop. */
export function boxFiles(dir: string, provider: string): BoxFiles {
  return {
    box: path.join(dir, `${provider}.box`),
    checksum: path.join(dir, `${provider}.box.sha256`),
    record: path.join(dir, `${provider}.json`),
    packageManifest: path.join(dir, `${provider}.packages.tsv`),
    smokeResult: path.join(dir, `${provider}.smoke.json`),
    smokeJunit: path.join(dir, `${provider}.smoke.xml`),
    uploadJournal: path.join(dir, `${provider}.uploads.json`),
  };
}

/** The files a build puts in place beside its box, each describing that box alone. */
export function buildSidecars(files: BoxFiles): string[] {
  return [files.checksum, files.record, files.packageManifest, files.smokeResult, files.smokeJunit];
}

export function writeChecksumFile(boxFile: string, sha256: string): void {
  writeFileSync(boxFiles(path.dirname(boxFile), providerOf(boxFile)).checksum, `${sha256}  ${path.basename(boxFile)}\n`);
}

/** The lower-case hex SHA-256 the box's checksum file gives for it. */
export function readChecksumFile(boxFile: string): string {
  const file = boxFiles(path.dirname(boxFile), providerOf(boxFile)).checksum;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new BoxStoreError(`${displayPath(file)} is missing: the build did not finish; rebuild the box`);
    throw error;
  }
  try {
    const listed = parseChecksumFile(text, path.basename(boxFile), displayPath(file));
    if (!listed.startsWith('sha256:')) throw new ChecksumFileError(`${displayPath(file)} gives ${listed}, not a SHA-256`);
    return listed.slice('sha256:'.length);
  } catch (error) {
    if (error instanceof ChecksumFileError) throw new BoxStoreError(error.message);
    throw error;
  }
}

const BOX_FILE = /^([a-z0-9][a-z0-9_-]*)\.box$/;

function providerOf(boxFile: string): string {
  const provider = BOX_FILE.exec(path.basename(boxFile))?.[1];
  if (!provider) throw new Error(`${boxFile} is not named <provider>.box`);
  return provider;
}

/** The box providers (libvirt, virtualbox, vmware_desktop) with a .box in a version folder, sorted. */
export function builtProviders(versionDir: string): string[] {
  return readdirSync(versionDir)
    .map((name) => BOX_FILE.exec(name)?.[1])
    .filter((provider): provider is string => provider !== undefined)
    .sort();
}

/** The versions of a box with a built box (for `boxProvider`, e.g. libvirt, or any), newest first. */
export function builtVersions(boxesDir: string, org: string, boxName: string, boxProvider?: string): string[] {
  const root = boxVersionsDirectory(boxesDir, org, boxName);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && isBoxVersion(entry.name))
    .filter((entry) => readdirSync(path.join(root, entry.name)).some((name) => (boxProvider ? name === `${boxProvider}.box` : BOX_FILE.test(name))))
    .map((entry) => entry.name)
    .sort((a, b) => compareVersions(b, a));
}
