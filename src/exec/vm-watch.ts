// Watches the hypervisor process a builder started, for runSupervised's
// `watch` option. Packer keeps "waiting for SSH" for its whole ssh_timeout
// after QEMU has died (hashicorp/packer#2155); with this watch the stage
// ends within a watch interval, naming the process that died.

import { basename } from 'node:path';
import { isAlive } from './proc.ts';
import type { StageProcess, SupervisedTaskView } from './supervise.ts';

export interface VmProcessWatchOptions {
  /** How the process is named in the error ("QEMU", "VirtualBox VM"). */
  label: string;
  /** Picks the VM process among the stage's processes. */
  match: (process: StageProcess) => boolean;
  /**
   * Called once when the VM process is first seen, e.g. to register it with the watchdog:
   * `onFound: (vm) => watchdog.register({ type: 'vm', kind: 'qemu', pid: vm.pid, startTime: vm.startTime })`.
   */
  onFound?: (process: StageProcess) => void;
}

/**
 * QEMU asked for information, not running a VM: Packer's qemu driver runs `qemu-system-x86_64
 * -version` before it starts the VM, and that process, seen first and gone at once, would be taken
 * for a VM that died (two parallel builds made it last long enough to be seen).
 */
const QEMU_QUERY_ARGUMENT = /^(-{1,2}(version|help|h)|help|\?)$/;

/** Matches a qemu-system-* process running a VM (by argv[0] or the kernel's command name). */
export function isQemuProcess(process: StageProcess): boolean {
  const program = basename(process.argv[0] ?? '');
  if (!program.startsWith('qemu-system-') && !process.comm.startsWith('qemu-system-')) return false;
  return !process.argv.slice(1).some((arg) => QEMU_QUERY_ARGUMENT.test(arg));
}

/** Matches VirtualBox's per-VM process. */
export function isVirtualBoxVmProcess(process: StageProcess): boolean {
  const program = basename(process.argv[0] ?? '');
  return program === 'VBoxHeadless' || program === 'VirtualBoxVM' || process.comm === 'VBoxHeadless';
}

/**
 * Remembers the first process that matches, and reports once it has gone
 * while the stage is still running. Disarm it when the builder is about to
 * stop the VM on purpose (e.g. on Packer's "Gracefully halting virtual
 * machine..." line), so a deliberate shutdown is not taken for a crash.
 *
 *   const vm = new VmProcessWatch({ label: 'QEMU', match: isQemuProcess });
 *   runSupervised({ ..., watch: vm.check, onLine: (l) => { if (/halting/.test(l)) vm.disarm(); } });
 */
export class VmProcessWatch {
  private readonly options: VmProcessWatchOptions;
  private armed = true;
  private seen: { pid: number; startTime: number; command: string } | null = null;

  constructor(options: VmProcessWatchOptions) {
    this.options = options;
  }

  /** The VM process once it has been seen. */
  get vm(): { pid: number; command: string } | null {
    return this.seen ? { pid: this.seen.pid, command: this.seen.command } : null;
  }

  disarm(): void {
    this.armed = false;
  }

  arm(): void {
    this.armed = true;
  }

  /** The `watch` callback. Arrow property so it can be passed unbound. */
  readonly check = (task: SupervisedTaskView): string | null => {
    if (this.seen === null) {
      const found = task.processes().find((p) => this.options.match(p));
      if (found) {
        this.seen = { pid: found.pid, startTime: found.startTime, command: found.argv.join(' ') || found.comm };
        this.options.onFound?.(found);
      }
      return null;
    }
    if (!this.armed || isAlive(this.seen.pid, this.seen.startTime)) return null;
    return `${this.options.label} process ${this.seen.pid} (${this.seen.command}) exited while stage "${task.stage}" was still waiting on it`;
  };
}
