// The smoke test: a box used as its users use it. It is added to a throw-away Vagrant home,
// `vagrant up` boots it with a Vagrantfile that names the box and nothing else of the spec, the
// checks from the definition run over SSH, then the VM, the box and everything made for them are
// removed, whether the checks passed, failed or were interrupted (each a step with a cleanup).
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LoadedDefinition } from '../definitions/load.ts';
import type { Provider } from '../definitions/schema.ts';
import { runCaptured } from '../exec/captured.ts';
import { parseDuration } from '../exec/timeouts.ts';
import { runSteps, type StepContext } from '../exec/steps.ts';
import { toolPath } from '../exec/tools.ts';
import type { Watchdog } from '../exec/watchdog.ts';
import { readProcStat } from '../exec/proc.ts';
import { CommandRunner } from '../exec/command-runner.ts';
import { boxProvider } from '../render/context.ts';
import { REPO_ROOT } from '../render/render.ts';
import { boxFiles } from '../store/box-store.ts';
import { smokeChecks, type SmokeCheck } from './checks.ts';
import { domainPidFile, LIBVIRT_URI, LibvirtDaemons } from './libvirt.ts';
import { junitXml } from './report.ts';
import type { CheckResult, SmokeResult } from './result.ts';

export type { CheckResult, SmokeResult };

export interface SmokeOptions {
  loaded: LoadedDefinition;
  provider: Provider;
  boxFile: string;
  sha256: string;
  version: string;
  logDir: string;
  signal: AbortSignal;
  watchdog?: Watchdog;
  /** kvm or tcg: how libvirt runs the domain (driver kvm or qemu). */
  accelerator: 'kvm' | 'tcg';
  dockerImage?: string;
  /** A tighter limit than the definition's smoke limit (what is left of the build's smoke step). */
  timeLimitMs?: number;
  graceMs?: number;
  onLine?: (line: string) => void;
}



interface SmokeState {
  options: SmokeOptions;
  vagrantHome: string;
  project: string;
  domain: string;
  /** The run's own transient storage pool: its box image and disks, apart from other runs'. */
  pool: string;
  poolDir: string;
  poolCreated: boolean;
  boxName: string;
  env: Record<string, string>;
  daemons?: LibvirtDaemons;
  boxAdded: boolean;
  upStarted: boolean;
  checks: CheckResult[];
  durations: Record<string, number>;
}


export async function smokeTest(options: SmokeOptions): Promise<SmokeResult> {
  const { definition, box } = options.loaded;
  const work = mkdtempSync(path.join(tmpdir(), `boxsmith-smoke-${box}-`));
  // A copy of the box is in here: if boxsmith is killed outright, its watchdog removes it.
  options.watchdog?.register({ type: 'scratch', path: work });
  // libvirt's QEMU runs as its own user and must reach the disks in the pool below.
  chmodSync(work, 0o711);
  const id = path.basename(work).replace(/[^a-zA-Z0-9-]/g, '').slice(-12);
  const state: SmokeState = {
    options,
    vagrantHome: path.join(work, 'vagrant-home'),
    project: path.join(work, 'project'),
    domain: `boxsmith-${id}-default`,
    pool: `boxsmith-${id}`,
    poolDir: path.join(work, 'pool'),
    poolCreated: false,
    boxName: `${definition.org}/${definition.box_name}`,
    env: {
      VAGRANT_HOME: path.join(work, 'vagrant-home'),
      VAGRANT_CHECKPOINT_DISABLE: '1',
      VAGRANT_NO_COLOR: '1',
      VAGRANT_DEFAULT_PROVIDER: boxProvider(options.provider),
      VAGRANT_LOG: 'warn',
    },
    boxAdded: false,
    upStarted: false,
    checks: [],
    durations: {},
  };
  mkdirSync(state.project, { recursive: true });
  mkdirSync(options.logDir, { recursive: true });
  const limit = parseDuration(definition.timeouts.smoke);
  let error: string | undefined;
  try {
    await runSteps(
      [
        ...(options.provider === 'qemu' ? [{ name: 'libvirt', run: startLibvirt, cleanup: stopLibvirt }] : []),
        { name: 'box-add', run: addBox, cleanup: removeBox },
        { name: 'up', run: vagrantUp, cleanup: destroyVm },
        { name: 'checks', run: runChecks },
      ],
      state,
      {
        signal: options.signal,
        // The smoke stage's limit covers all of it; each part may use what is left.
        defaultTimeoutMs: limit,
        runTimeoutMs: options.timeLimitMs ?? limit,
        cleanupTimeoutMs: 5 * 60_000,
        onEvent: (event) => {
          if (event.type === 'step-end') state.durations[event.record.name] = Math.round(event.record.durationMs / 100) / 10;
        },
      },
    );
  } catch (caught) {
    error = caught instanceof Error ? caught.message : String(caught);
  } finally {
    rmSync(work, { recursive: true, force: true });
    options.watchdog?.unregister({ type: 'scratch', path: work });
  }
  const result: SmokeResult = {
    box,
    name: state.boxName,
    version: options.version,
    provider: boxProvider(options.provider),
    passed: !error && state.checks.length > 0 && state.checks.every((c) => c.passed),
    ...(error ? { error } : {}),
    checks: state.checks,
    durations_s: state.durations,
    tested_at: new Date().toISOString(),
    vagrant_version: await vagrantVersion(),
  };
  // Results describe the box only when its checks ran: a host failure before them (libvirtd gone,
  // an interrupt) says nothing about the box and must not replace what it was last tested with.
  writeResults(result, result.checks.length > 0 ? [path.dirname(options.boxFile), options.logDir] : [options.logDir]);
  return result;
}

function commands(state: SmokeState, ctx: StepContext, stage: string): CommandRunner {
  return new CommandRunner({
    stage,
    logDir: state.options.logDir,
    signal: ctx.signal,
    deadline: ctx.deadline,
    ...(state.options.watchdog ? { watchdog: state.options.watchdog } : {}),
    ...(state.options.graceMs !== undefined ? { graceMs: state.options.graceMs } : {}),
    consoleLogs: [path.join(state.options.logDir, 'console.log')],
    ...(state.options.onLine ? { onLine: state.options.onLine } : {}),
  });
}

async function startLibvirt(state: SmokeState, ctx: StepContext): Promise<void> {
  state.daemons = await LibvirtDaemons.start({
    logDir: state.options.logDir,
    domain: state.domain,
    signal: ctx.signal,
    ...(state.options.watchdog ? { watchdog: state.options.watchdog } : {}),
  });
  state.options.onLine?.(`using ${state.daemons.description}`);
  mkdirSync(state.poolDir, { mode: 0o711 });
  state.options.watchdog?.register({ type: 'libvirt-pool', pool: state.pool, connect: LIBVIRT_URI });
  await commands(state, ctx, 'smoke').run('virsh', ['-c', LIBVIRT_URI, 'pool-create-as', state.pool, 'dir', '--target', state.poolDir]);
  state.poolCreated = true;
}

async function stopLibvirt(state: SmokeState, ctx: StepContext): Promise<void> {
  if (state.poolCreated) {
    // Transient: destroying it is all; its files go with the smoke test's folder.
    await commands(state, ctx, 'smoke-cleanup').run('virsh', ['-c', LIBVIRT_URI, 'pool-destroy', state.pool], { allowFailure: true });
  }
  state.options.watchdog?.unregister({ type: 'libvirt-pool', pool: state.pool, connect: LIBVIRT_URI });
  const removed = (await state.daemons?.stop()) ?? [];
  if (removed.length) state.options.onLine?.(`removed ${removed.join(', ')}`);
}

async function addBox(state: SmokeState, ctx: StepContext): Promise<void> {
  const { options } = state;
  state.boxAdded = true;
  await commands(state, ctx, 'smoke').run(
    toolPath('vagrant'),
    ['box', 'add', '--name', state.boxName, '--provider', boxProvider(options.provider),
      '--checksum-type', 'sha256', '--checksum', options.sha256, options.boxFile],
    { env: state.env, cwd: state.project },
  );
}

async function removeBox(state: SmokeState, ctx: StepContext): Promise<void> {
  if (!state.boxAdded) return;
  await commands(state, ctx, 'smoke-cleanup').run(toolPath('vagrant'), ['box', 'remove', '--force', '--all', state.boxName], {
    env: state.env,
    cwd: state.project,
    allowFailure: true,
  });
}

/** A Vagrantfile as a user writes one: the box's name; the spec's settings come from the box. */
export function smokeVagrantfile(boxName: string, domainPrefix: string, storagePool: string, consoleLog: string, accelerator: 'kvm' | 'tcg'): string {
  return `# Written by boxsmith's smoke test: the box as a user gets it. CPUs and memory are not set here,
# so the box's own Vagrantfile must give them.
Vagrant.configure("2") do |config|
  config.vm.box = ${JSON.stringify(boxName)}
  config.vm.box_check_update = false
  # Keep Vagrant's insecure key, so the check can see the box authorized it.
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.boot_timeout = 900

  config.vm.provider :libvirt do |lv|
    lv.default_prefix = ${JSON.stringify(domainPrefix)}
    lv.storage_pool_name = ${JSON.stringify(storagePool)}
    lv.graphics_type = "none"
    lv.video_type = "none"
    lv.serial :type => "file", :source => { :path => ${JSON.stringify(consoleLog)} }
${accelerator === 'tcg' ? '    # No usable KVM on this host: plain emulation, with a CPU model it can emulate.\n    lv.driver = "qemu"\n    lv.cpu_mode = "custom"\n    lv.cpu_model = "qemu64"\n' : ''}  end
end
`;
}

/** What a guest kernel prints on its console when it has frozen for good. */
const GUEST_FROZEN = /soft lockup - CPU#\d+ stuck for \d+s|Kernel panic - not syncing[^\n]*/;

/** The frozen-guest line in the tail of a console log, if any. */
export function guestFrozen(consoleLog: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(consoleLog, 'latin1').slice(-65536);
  } catch {
    return undefined;
  }
  return GUEST_FROZEN.exec(text)?.[0];
}

const UP_ATTEMPTS = 2;

/**
 * `vagrant up`, watched: a guest kernel that froze (a soft lockup, seen now and then under
 * software emulation) ends the attempt at once instead of at vagrant's boot timeout, and the VM
 * is destroyed and booted once more. Any other failure is the box's and is not retried.
 */
async function vagrantUp(state: SmokeState, ctx: StepContext): Promise<void> {
  const { options } = state;
  const prefix = state.domain.slice(0, -'default'.length);
  const consoleLog = path.join(options.logDir, 'console.log');
  writeFileSync(path.join(state.project, 'Vagrantfile'), smokeVagrantfile(state.boxName, prefix, state.pool, consoleLog, options.accelerator));
  for (let attempt = 1; ; attempt++) {
    options.watchdog?.register({ type: 'libvirt', domain: state.domain, connect: LIBVIRT_URI });
    state.upStarted = true;
    let registeredPid = false;
    let frozen: string | undefined;
    try {
      await commands(state, ctx, 'smoke').run(toolPath('vagrant'), ['up', '--provider', boxProvider(options.provider), '--no-provision'], {
        env: state.env,
        cwd: state.project,
        watch: () => {
          // The domain's QEMU is libvirtd's child, not vagrant's: register it with the watchdog by
          // pid too, in case libvirtd itself is gone when the watchdog has to clean up.
          if (!registeredPid && options.watchdog) {
            const pidFile = domainPidFile(state.domain);
            const pid = pidFile ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
            const stat = Number.isInteger(pid) ? readProcStat(pid) : null;
            if (stat) {
              options.watchdog.register({ type: 'vm', kind: 'qemu', pid, startTime: stat.startTime });
              registeredPid = true;
            }
          }
          frozen = guestFrozen(consoleLog);
          return frozen ? `the guest froze (console: ${frozen}; ${consoleLog})` : null;
        },
        watchIntervalMs: 2000,
      });
      return;
    } catch (error) {
      if (!frozen || attempt >= UP_ATTEMPTS || ctx.signal.aborted) throw error;
      options.onLine?.(`the guest froze (${frozen}); destroying it and booting once more`);
      await destroyVm(state, ctx);
      renameSync(consoleLog, path.join(options.logDir, `console-attempt-${attempt}.log`));
    }
  }
}

async function destroyVm(state: SmokeState, ctx: StepContext): Promise<void> {
  if (!state.upStarted) return;
  const run = commands(state, ctx, 'smoke-cleanup');
  // A libvirtd that died mid-test left its domain running: one started again takes it back.
  if (await state.daemons?.revive()) state.options.onLine?.(`libvirtd was gone; started again to remove the domain: ${state.daemons!.description}`);
  await run.run(toolPath('vagrant'), ['destroy', '--force'], { env: state.env, cwd: state.project, allowFailure: true });
  if (state.options.provider === 'qemu') {
    // Whatever vagrant left (an interrupted `up` can leave a defined domain and its volume).
    const exists = await runCaptured('virsh', ['-c', LIBVIRT_URI, 'dominfo', state.domain], { timeoutMs: 15_000 });
    if (exists.exitCode === 0) {
      await run.run('virsh', ['-c', LIBVIRT_URI, 'destroy', state.domain], { allowFailure: true });
      await run.run('virsh', ['-c', LIBVIRT_URI, 'undefine', state.domain, '--remove-all-storage'], { allowFailure: true });
    }
    state.options.watchdog?.unregister({ type: 'libvirt', domain: state.domain, connect: LIBVIRT_URI });
  }
}

async function runChecks(state: SmokeState, ctx: StepContext): Promise<void> {
  const { options } = state;
  const run = commands(state, ctx, 'smoke');
  const sshConfig = path.join(state.project, 'ssh-config');
  const config = await run.run(toolPath('vagrant'), ['ssh-config'], { env: state.env, cwd: state.project, capture: true });
  // One SSH connection for all checks: a handshake costs seconds under emulation.
  const controlPath = path.join(state.project, 'ssh-control');
  writeFileSync(sshConfig, `${config.stdout}\n  ControlPath ${controlPath}\n  BatchMode yes\n  ConnectTimeout 30\n`);
  const master = new AbortController();
  const masterExited = run
    .run('ssh', ['-F', sshConfig, '-M', '-N', 'default'], { allowFailure: true, signal: master.signal })
    .catch(() => undefined);
  try {
    const checks = smokeChecks(options.loaded.definition, {
      provider: options.provider,
      insecurePublicKey: readFileSync(path.join(REPO_ROOT, 'keys', 'vagrant.pub'), 'utf8'),
      ...(options.dockerImage ? { dockerImage: options.dockerImage } : {}),
    });
    for (const check of checks) state.checks.push(await runCheck(run, sshConfig, check));
  } finally {
    master.abort();
    await masterExited;
  }
}

async function runCheck(run: CommandRunner, sshConfig: string, check: SmokeCheck): Promise<CheckResult> {
  const started = Date.now();
  // ssh joins its arguments into one command line for the remote shell: quote the script once.
  const quoted = `'${check.command.replace(/'/g, `'\\''`)}'`;
  const result = await run.run('ssh', ['-F', sshConfig, 'default', 'bash', '-c', quoted], {
    allowFailure: true,
    capture: true,
    timeoutMs: 5 * 60_000,
  });
  const actual = result.stdout.trim();
  return {
    name: check.name,
    command: check.command,
    expected: check.expected,
    actual,
    exit_code: result.exitCode,
    passed: check.judge(actual, result.exitCode ?? -1),
    duration_s: Math.round((Date.now() - started) / 100) / 10,
  };
}

async function vagrantVersion(): Promise<string> {
  const result = await runCaptured(toolPath('vagrant'), ['--version'], { timeoutMs: 30_000, env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: '1' } });
  return result.stdout.trim() || 'unknown';
}

/** `<provider>.smoke.json` and `.smoke.xml` (JUnit) into each folder (beside the box, the log folder). */
function writeResults(result: SmokeResult, dirs: string[]): void {
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const xml = junitXml(result);
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true });
    const files = boxFiles(dir, result.provider);
    for (const [file, content] of [[files.smokeResult, json], [files.smokeJunit, xml]] as const) {
      writeFileSync(`${file}.partial`, content);
      // Renamed into place: a publisher never reads half a result.
      renameSync(`${file}.partial`, file);
    }
  }
}
