// The layout of boxes/, known here alone: boxes/<org>/<box name>/<version>/<provider>.box, beside
// it <provider>.box.sha256, the build record <provider>.json, the package manifest
// <provider>.packages.tsv (src/store/manifest.ts) and the smoke results <provider>.smoke.json and
// .smoke.xml. Versions are ordered as Vagrant orders them.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

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

/** boxes/<org>/<box name>/<version>/ */
export function versionDirectory(boxesDir: string, org: string, boxName: string, version: string): string {
  return path.join(boxesDir, org, boxName, version);
}

const BOX_FILE = /^([a-z0-9][a-z0-9_-]*)\.box$/;

/** The box providers (libvirt, virtualbox, vmware_desktop) with a .box in a version folder, sorted. */
export function builtProviders(versionDir: string): string[] {
  return readdirSync(versionDir)
    .map((name) => BOX_FILE.exec(name)?.[1])
    .filter((provider): provider is string => provider !== undefined)
    .sort();
}

/** The versions of a box with a built box (for `boxProvider`, e.g. libvirt, or any), newest first. */
export function builtVersions(boxesDir: string, org: string, boxName: string, boxProvider?: string): string[] {
  const root = path.join(boxesDir, org, boxName);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && isBoxVersion(entry.name))
    .filter((entry) => readdirSync(path.join(root, entry.name)).some((name) => (boxProvider ? name === `${boxProvider}.box` : BOX_FILE.test(name))))
    .map((entry) => entry.name)
    .sort((a, b) => compareVersions(b, a));
}
