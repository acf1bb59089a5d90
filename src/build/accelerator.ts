// kvm or tcg for QEMU. A /dev/kvm that opens is not enough: some hosts have a nested or
// paravirtual KVM device on which a stock kernel hangs. So the host's kernel is booted under KVM
// (no root filesystem: reaching the kernel's "cannot mount root" panic proves it runs), once per
// host, kernel and QEMU version; the verdict is cached.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { release } from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-files.ts';
import { runCaptured } from '../exec/captured.ts';
import { toolPath } from '../exec/tools.ts';

export type Accelerator = 'kvm' | 'tcg';

export interface AcceleratorChoice {
  accelerator: Accelerator;
  reason: string;
}

const PROBE_TIMEOUT_MS = 30_000;
/** What a kernel prints once it has booted as far as it can without a root filesystem. */
const BOOTED = /Kernel panic|VFS: Unable to mount root|Run \/init|Freeing unused kernel/;

export async function chooseAccelerator(setting: 'auto' | Accelerator, cacheDir: string): Promise<AcceleratorChoice> {
  const forced = process.env.BOXSMITH_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return { accelerator: forced, reason: `BOXSMITH_ACCEL=${forced}` };
  if (setting !== 'auto') return { accelerator: setting, reason: `the definition says ${setting}` };
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accelerator: 'tcg', reason: '/dev/kvm is missing or not accessible' };
  }
  const kernel = probeKernel();
  if (!kernel) return { accelerator: 'tcg', reason: 'no kernel in /boot to test KVM with' };

  const qemu = toolPath('qemu');
  const version = (await runCaptured(qemu, ['--version'], { timeoutMs: 10_000 })).stdout.split('\n')[0] ?? '';
  const key = `${release()} ${kernel} ${version}`;
  const cacheFile = path.join(cacheDir, 'kvm-probe.json');
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { key: string; choice: AcceleratorChoice };
    if (cached.key === key) return cached.choice;
  } catch {
    // no verdict yet
  }
  const probe = await runCaptured(
    qemu,
    ['-accel', 'kvm', '-cpu', 'max', '-m', '256', '-nodefaults', '-display', 'none', '-no-reboot',
      '-kernel', kernel, '-append', 'console=ttyS0 panic=-1', '-serial', 'stdio'],
    { timeoutMs: PROBE_TIMEOUT_MS },
  );
  const choice: AcceleratorChoice = BOOTED.test(probe.stdout)
    ? { accelerator: 'kvm', reason: `a kernel boots under KVM here (${path.basename(kernel)})` }
    : {
        accelerator: 'tcg',
        reason: probe.timedOut
          ? `/dev/kvm exists, but ${path.basename(kernel)} did not boot under KVM within ${PROBE_TIMEOUT_MS / 1000} s`
          : `/dev/kvm exists, but QEMU could not boot under KVM: ${(probe.stderr || probe.stdout).trim().split('\n').pop() ?? ''}`,
      };
  // Whole or not at all: a build starting beside this one reads it.
  await writeFileAtomic(cacheFile, `${JSON.stringify({ key, choice }, null, 2)}\n`);
  return choice;
}

function probeKernel(): string | undefined {
  if (!existsSync('/boot')) return undefined;
  const kernels = readdirSync('/boot').filter((name) => name.startsWith('vmlinuz-')).sort();
  const newest = kernels[kernels.length - 1];
  return newest ? path.join('/boot', newest) : undefined;
}
