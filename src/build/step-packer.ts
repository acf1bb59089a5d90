// Step build: `packer build` of the one source, with the build VM known to the watchdog and its
// process watched (a VM that dies ends the step at once).
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { StepContext } from '../exec/steps.ts';
import { toolPath } from '../exec/tools.ts';
import { isQemuProcess, isVirtualBoxVmProcess, VmProcessWatch } from '../exec/vm-watch.ts';
import type { WatchdogTarget } from '../exec/watchdog.ts';
import { boxProvider, sourceRef } from '../render/context.ts';
import { stepRunner, type BuildState } from './build-state.ts';

export async function packerStep(state: BuildState, ctx: StepContext): Promise<void> {
  const { env, target } = state;
  const commands = stepRunner(state, 'build', ctx);
  const packer = toolPath('packer');
  const packerEnv = {
    PACKER_LOG: '1',
    PACKER_LOG_PATH: path.join(state.logDir, 'packer.log'),
    PACKER_CACHE_DIR: path.join(env.cacheDir, 'packer'),
    CHECKPOINT_DISABLE: '1',
    PACKER_NO_COLOR: '1',
  };
  if (env.packer.modern) await commands.run(packer, ['init', state.templateDir], { env: packerEnv });

  const variables: Record<string, string> = {
    work_dir: state.packerWorkDir,
    headless: 'true',
    // Guests reach the host's loopback as 10.0.2.2 on QEMU's and VirtualBox's NAT, not on VMware's.
    apt_proxy: env.aptCache && target.provider !== 'vmware' ? env.aptCache.guestUrl : '',
  };
  if (state.iso) {
    variables.iso_urls = JSON.stringify([`file://${state.iso.path}`]);
    variables.iso_checksum = state.iso.checksum;
  }
  if (state.baseImage) {
    variables.base_image = state.baseImage.path;
    variables.base_image_checksum = `sha256:${state.baseImage.sha256}`;
  }
  if (target.provider === 'qemu') {
    variables.qemu_accelerator = env.accelerator?.accelerator ?? 'tcg';
    variables.qemu_binary = toolPath('qemu');
  }
  mkdirSync(path.dirname(state.packerWorkDir), { recursive: true });
  rmSync(state.packerWorkDir, { recursive: true, force: true });

  // The build VM, known to the watchdog before Packer makes it: should boxsmith be killed outright,
  // the watchdog powers it off and deletes it with the hypervisor's own tool (QEMU: by its pid).
  const builtVm = buildVmTarget(state);
  if (builtVm) env.watchdog?.register(builtVm);
  const vm = new VmProcessWatch({
    label: target.provider === 'qemu' ? 'QEMU' : 'VirtualBox',
    match: target.provider === 'qemu' ? isQemuProcess : isVirtualBoxVmProcess,
    onFound: (process) => {
      if (target.provider === 'qemu') env.watchdog?.register({ type: 'vm', kind: 'qemu', pid: process.pid, startTime: process.startTime });
    },
  });
  await commands.run(
    packer,
    [
      'build',
      `-only=${sourceRef(target.provider)}`,
      '-on-error=cleanup',
      '-color=false',
      ...Object.entries(variables).flatMap(([name, value]) => ['-var', `${name}=${value}`]),
      state.templateDir,
    ],
    {
      env: packerEnv,
      ...(target.provider !== 'vmware' ? { watch: vm.check } : {}),
      // From here on QEMU is meant to exit: Packer shuts the VM down, then converts its disk.
      onLine: (line) => {
        if (/Gracefully halting virtual machine|Stopping virtual machine/.test(line)) vm.disarm();
      },
    },
  ).finally(() => vm.disarm());
  // Packer removed its VM (the box is made from what it exported): nothing left to tear down.
  if (builtVm) env.watchdog?.unregister(builtVm);
  state.artifact = path.join(state.packerWorkDir, `${boxProvider(target.provider)}.box`);
}

/** The VirtualBox VM (by name) or VMware VM (by .vmx) Packer makes for this build, as the template names them. */
function buildVmTarget(state: BuildState): WatchdogTarget | undefined {
  const name = state.target.loaded.definition.box_name;
  if (state.target.provider === 'virtualbox') return { type: 'vm', kind: 'virtualbox', name };
  if (state.target.provider === 'vmware') return { type: 'vm', kind: 'vmware', vmx: path.join(state.packerWorkDir, 'vmware', `${name}.vmx`) };
  return undefined;
}
