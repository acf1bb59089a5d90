// libguestfs's guestfish, run as boxsmith needs it on any Debian host: its appliance (a small VM
// under QEMU) does what the host cannot, such as LVM where the host has no device-mapper. The
// appliance boots the kernel of the image being made, so the host needs no kernel of its own in
// /boot (containers and CI runners have none) and nothing is installed on the host's boot path.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CommandRunner } from '../exec/command-runner.ts';

export interface GuestfishOptions {
  runner: CommandRunner;
  /** A kernel and its modules folder for the appliance (SUPERMIN_KERNEL, SUPERMIN_MODULES). */
  kernel: { image: string; modules: string };
  /** boxsmith's own cache folder for the appliance supermin builds, apart from the user's. */
  cacheDir: string;
  /** Where the script file is written. */
  workDir: string;
  /** Drives, in order: /dev/sda, /dev/sdb, ... */
  drives: { file: string; format: 'raw' | 'qcow2'; readonly?: boolean }[];
  timeoutMs?: number;
}

/** The appliance's environment: QEMU by direct launch, under TCG unless KVM really works here. */
function guestfishEnvironment(options: Pick<GuestfishOptions, 'kernel' | 'cacheDir'>, accelerator: 'kvm' | 'tcg'): Record<string, string> {
  return {
    LIBGUESTFS_BACKEND: 'direct',
    // libguestfs tries KVM first when /dev/kvm exists; on hosts where KVM does not boot a guest
    // (see accelerator.ts) that attempt hangs or aborts QEMU.
    ...(accelerator === 'tcg' ? { LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' } : {}),
    SUPERMIN_KERNEL: options.kernel.image,
    SUPERMIN_MODULES: options.kernel.modules,
    LIBGUESTFS_CACHEDIR: options.cacheDir,
    LIBGUESTFS_TMPDIR: options.cacheDir,
  };
}

/**
 * Runs `commands` (guestfish's own language, one per line) after `run`; resolves with guestfish's
 * stdout. The drives are added before the appliance starts; a failed command fails the run.
 */
export async function runGuestfish(options: GuestfishOptions, commands: string[], accelerator: 'kvm' | 'tcg'): Promise<string> {
  mkdirSync(options.cacheDir, { recursive: true });
  // supermin reads the host's /lib/modules even when told to use other modules; a container may lack it.
  mkdirSync('/lib/modules', { recursive: true });
  const script = path.join(options.workDir, `guestfish-${Date.now()}.script`);
  const drives = options.drives.map(
    (drive) => `add ${quoteArg(drive.file)} format:${drive.format}${drive.readonly ? ' readonly:true' : ''}`,
  );
  writeFileSync(script, `${[...drives, 'run', ...commands].join('\n')}\n`);
  const result = await options.runner.run('guestfish', ['--no-progress-bars', '-f', script], {
    env: guestfishEnvironment(options, accelerator),
    capture: true,
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  return result.stdout;
}

/** guestfish's quoting: a double-quoted string with backslash escapes. */
function quoteArg(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The structs that guestfish's *-full commands print (`[0] = {`, then `name: value` lines, `}`),
 * each as a map of its fields.
 */
export function guestfishRecords(output: string): Map<string, string>[] {
  const records: Map<string, string>[] = [];
  let current: Map<string, string> | undefined;
  for (const line of output.split('\n')) {
    if (/^\[\d+\] = \{$/.test(line.trim())) {
      current = new Map();
      records.push(current);
    } else if (line.trim() === '}') {
      current = undefined;
    } else {
      const match = /^\s*([a-z_0-9]+): ?(.*)$/.exec(line);
      if (current && match) current.set(match[1]!, match[2]!.trim());
    }
  }
  return records;
}
