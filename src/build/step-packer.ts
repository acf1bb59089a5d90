// Step build: `packer build` of the one source, with the build VM known to the watchdog and its
// process watched (a VM that dies ends the step at once). A VirtualBox or VMware VM that Packer
// leaves behind when it is stopped (a time limit, Ctrl-C) is torn down by the step's cleanup.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { StageLog } from '../exec/stage-log.ts';
import type { CleanupContext, StepContext } from '../exec/steps.ts';
import { toolPath } from '../exec/tools.ts';
import { tearDownHypervisorVm, virtualBoxVmRegistered, type HypervisorVm } from '../exec/vm-teardown.ts';
import { isQemuProcess, isVirtualBoxVmProcess, VmProcessWatch } from '../exec/vm-watch.ts';
import { guestCompressorCommand } from '../definitions/compression-level.ts';
import { CONTENT_PORT_NAME, packerOutput, sourceRef } from '../render/context.ts';
import { boxCompressor } from '../store/box-packager.ts';
import { boxCompression, boxCompressionLevel, stepRunner, toolTimeoutMs, type BuildState } from './build-state.ts';
import { openContentSink } from './content-sink.ts';

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
  if (state.dockerStatic) variables.docker_static_tgz = state.dockerStatic.path;
  if (state.baseImage) {
    variables.base_image = state.baseImage.path;
    variables.base_image_checksum = `sha256:${state.baseImage.sha256}`;
  }
  if (target.provider === 'qemu') {
    variables.qemu_accelerator = env.accelerator?.accelerator ?? 'tcg';
    variables.qemu_binary = toolPath('qemu');
    // A Unix socket's path holds 107 bytes (sun_path). Packer's default, <work>/packer/qemu/box.img.monitor,
    // passes that under a deep BOXSMITH_WORK or a long box name, and QEMU then only "failed to start".
    state.monitorDir = mkdtempSync('/tmp/boxsmith-qmp-');
    env.watchdog?.register({ type: 'scratch', path: state.monitorDir });
    variables.qemu_monitor_socket = path.join(state.monitorDir, 'monitor.sock');
  }
  // content-size.sh's tar of the guest's files, compressed here as the box will be: QEMU's through a
  // virtio-serial port, VirtualBox's over its NAT to the host's loopback (10.0.2.2); VMware's NAT
  // reaches no host loopback, so its guest compresses the tar itself.
  const compression = boxCompression(state);
  const level = boxCompressionLevel(state);
  variables.content_compressor = guestCompressorCommand(compression, level);
  const compressor = boxCompressor(compression, level);
  if (state.monitorDir) {
    // QEMU: a virtio-serial port, passed to a socket beside QMP's (a short path in a 0700 folder).
    const socketPath = path.join(state.monitorDir, 'content.sock');
    state.contentSink = await openContentSink({ channel: { kind: 'virtio', socketPath, guestPort: CONTENT_PORT_NAME }, compressor, signal: ctx.signal });
    variables.content_socket = socketPath;
    variables.content_sink = state.contentSink.guestAddress;
  } else if (target.provider === 'virtualbox') {
    state.contentSink = await openContentSink({ channel: { kind: 'tcp', guestHost: '10.0.2.2' }, compressor, signal: ctx.signal });
    variables.content_sink = state.contentSink.guestAddress;
  }
  mkdirSync(path.dirname(state.packerWorkDir), { recursive: true });
  rmSync(state.packerWorkDir, { recursive: true, force: true });

  // The build VM, known to the watchdog and to the cleanup before Packer makes it: should Packer be
  // stopped or boxsmith be killed outright, it is powered off and deleted with the hypervisor's own
  // tool (QEMU: by its pid). A VirtualBox VM of that name registered already is someone else's.
  const builtVm = buildVmTarget(state);
  if (builtVm?.kind === 'virtualbox' && (await virtualBoxVmRegistered(builtVm.name, toolTimeoutMs(ctx)))) {
    note(state, commands.logFile, `a VirtualBox VM named "${builtVm.name}" is registered already: not this build's, so never torn down by it (Packer will not make its own over it)`);
  } else if (builtVm) {
    state.buildVm = builtVm;
    env.watchdog?.register(builtVm);
  }
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
  if (state.buildVm) env.watchdog?.unregister(state.buildVm);
  state.buildVm = undefined;
  // What boxsmith packages the box from: QEMU's disk, VirtualBox's or VMware's output directory.
  state.artifact = packerOutput(target.provider, state.packerWorkDir);
}

/** Cleanup: the content listener, QEMU's monitor folder, and the VirtualBox or VMware VM of a Packer that did not finish, powered off and deleted (as the watchdog would). */
export async function removePackerLeftovers(state: BuildState, ctx: CleanupContext): Promise<void> {
  state.contentSink?.close();
  state.contentSink = undefined;
  if (state.monitorDir) {
    rmSync(state.monitorDir, { recursive: true, force: true });
    state.env.watchdog?.unregister({ type: 'scratch', path: state.monitorDir });
    state.monitorDir = undefined;
  }
  const vm = state.buildVm;
  if (!vm) return;
  const logFile = stepRunner(state, 'build', ctx).logFile;
  note(state, logFile, `Packer did not finish (${ctx.outcome}): tearing down the build VM it may have left`);
  await tearDownHypervisorVm(vm, { timeoutMs: toolTimeoutMs(ctx), note: (line) => note(state, logFile, line) });
  state.env.watchdog?.unregister(vm);
  state.buildVm = undefined;
}


/** A line of boxsmith's own in the build step's log, and on the progress display. */
function note(state: BuildState, logFile: string, text: string): void {
  const log = new StageLog(logFile);
  log.note(text);
  log.close();
  state.env.onLine?.(text, state.target);
}

/** The VirtualBox VM (by name) or VMware VM (by .vmx) Packer makes for this build, as the template names them. */
function buildVmTarget(state: BuildState): HypervisorVm | undefined {
  const name = state.target.loaded.definition.box_name;
  if (state.target.provider === 'virtualbox') return { type: 'vm', kind: 'virtualbox', name };
  if (state.target.provider === 'vmware') return { type: 'vm', kind: 'vmware', vmx: path.join(state.packerWorkDir, 'vmware', `${name}.vmx`) };
  return undefined;
}
