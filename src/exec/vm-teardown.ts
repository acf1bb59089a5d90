// Ending a VirtualBox or VMware VM with the hypervisor's own tool: powered off first (neither
// deletes a running VM), then unregistered and its files deleted. A Packer that is stopped (a time
// limit, Ctrl-C) or killed leaves its VM so (packer-plugin-virtualbox#167); the build step's
// cleanup and the watchdog both end it here, so both do the same.
import { runCaptured } from './captured.ts';
import { runHelperTool, type HelperToolOptions } from './helper-tool.ts';
import { findExecutable, toolPath } from './tools.ts';
import type { WatchdogTarget } from './watchdog.ts';

/** A VM a hypervisor tool knows by name (VirtualBox) or by its .vmx (VMware). */
export type HypervisorVm = Extract<WatchdogTarget, { type: 'vm'; kind: 'virtualbox' | 'vmware' }>;

/** Powers the VM off and deletes it; each call's outcome goes to `options.note`, nothing throws. */
export async function tearDownHypervisorVm(vm: HypervisorVm, options: HelperToolOptions): Promise<void> {
  if (vm.kind === 'virtualbox') {
    await runHelperTool('vboxmanage', ['controlvm', vm.name, 'poweroff'], `VirtualBox VM "${vm.name}"`, options);
    await runHelperTool('vboxmanage', ['unregistervm', vm.name, '--delete'], `VirtualBox VM "${vm.name}"`, options);
  } else {
    await runHelperTool('vmrun', ['stop', vm.vmx, 'hard'], `VMware VM ${vm.vmx}`, options);
    await runHelperTool('vmrun', ['deleteVM', vm.vmx], `VMware VM ${vm.vmx}`, options);
  }
}

/**
 * Whether VirtualBox already has a VM of this name: one registered before a build is not the
 * build's, and is never torn down by it. False also when VBoxManage is missing or does not answer.
 */
export async function virtualBoxVmRegistered(name: string, timeoutMs: number): Promise<boolean> {
  const command = toolPath('vboxmanage');
  if (findExecutable(command) === null) return false;
  const run = await runCaptured(command, ['showvminfo', name, '--machinereadable'], { timeoutMs });
  return run.exitCode === 0;
}
