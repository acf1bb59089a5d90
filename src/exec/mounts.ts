// What is mounted where, from the kernel's own table: the base image mounts proc, sys and a loop
// device below its work folder, and nothing may be deleted through a live mount.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The mounts in /proc/self/mountinfo: where (the kernel's octal escapes, \040 for a space, undone) and the file system type. */
export function mountTable(): { point: string; type: string }[] {
  let table: string;
  try {
    table = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return table
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const point = fields[4]!.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
      return { point, type: fields[fields.indexOf('-') + 1] ?? '?' };
    });
}

export function mountPoints(): string[] {
  return mountTable().map((mount) => mount.point);
}

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export function mountsBelow(dir: string): string[] {
  const root = path.resolve(dir);
  const below = mountPoints().filter((point) => point === root || point.startsWith(`${root}/`));
  return [...new Set(below)].sort((a, b) => b.length - a.length);
}

export function isMountPoint(dir: string): boolean {
  return mountPoints().includes(path.resolve(dir));
}
