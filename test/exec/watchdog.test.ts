import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { mountsBelow } from '../../src/exec/mounts.ts';
import { isAlive } from '../../src/exec/proc.ts';
import { newRunId } from '../../src/exec/run-id.ts';
import { Watchdog, encodeWatchdogMessage, parseWatchdogMessage, watchdogTargetKey } from '../../src/exec/watchdog.ts';
import { WatchdogServer } from '../../src/exec/watchdog-server.ts';
import { ProcessTracker, alivePids, makeTempDir, pollUntil, runProcesses, startDriver } from './helpers.ts';

describe('watchdog protocol', () => {
  it('encodes and parses every message kind', () => {
    const targets = [
      { type: 'pgid', pgid: 1234 },
      { type: 'pgid', pgid: 1235, leaderStartTime: 4321 },
      { type: 'pid', pid: 55, startTime: 987 },
      { type: 'vm', kind: 'qemu', pid: 77 },
      { type: 'vm', kind: 'virtualbox', name: 'boxsmith-ubuntu' },
      { type: 'vm', kind: 'vmware', vmx: '/vms/box.vmx' },
      { type: 'libvirt', domain: 'boxsmith-debian', connect: 'qemu:///system' },
      { type: 'libvirt-pool', pool: 'boxsmith-x1', connect: 'qemu:///system' },
      { type: 'cgroup', path: '/sys/fs/cgroup/boxsmith-x' },
      { type: 'mounts', path: '/var/cache/boxsmith/base-images/x.work-12' },
      { type: 'scratch', path: '/srv/boxsmith/work/debian-12-qemu-run' },
      { type: 'lease', dir: '/cache/apt-cacher-ng', id: '123-456-0' },
    ] as const;
    for (const target of targets) {
      for (const action of ['register', 'unregister'] as const) {
        assert.deepEqual(parseWatchdogMessage(encodeWatchdogMessage(action, target)), { action, target });
      }
    }
    assert.equal(encodeWatchdogMessage('register', { type: 'pgid', pgid: 5 }), '{"register":"pgid","pgid":5}\n');
    assert.equal(encodeWatchdogMessage('register', { type: 'vm', kind: 'qemu', pid: 9 }), '{"register":"vm","kind":"qemu","pid":9}\n');
    assert.deepEqual(parseWatchdogMessage('{"goodbye":true}'), { action: 'goodbye' });
    assert.equal(watchdogTargetKey({ type: 'pid', pid: 55, startTime: 1 }), watchdogTargetKey({ type: 'pid', pid: 55 }));
  });

  it('rejects malformed messages with a reason', () => {
    assert.throws(() => parseWatchdogMessage('nonsense'), /not JSON/);
    assert.throws(() => parseWatchdogMessage('[1]'), /not a JSON object/);
    assert.throws(() => parseWatchdogMessage('{"hello":1}'), /expected "register", "unregister" or "goodbye"/);
    assert.throws(() => parseWatchdogMessage('{"register":"pgid","pgid":1}'), /process group id > 1/);
    assert.throws(() => parseWatchdogMessage('{"register":"vm","kind":"hyperv","name":"x"}'), /unknown VM kind "hyperv"/);
    assert.throws(() => parseWatchdogMessage('{"register":"cgroup","path":"relative"}'), /absolute path/);
    assert.throws(() => parseWatchdogMessage('{"register":"disk","path":"/x"}'), /unknown target type/);
    assert.throws(() => parseWatchdogMessage('{"register":"scratch","path":"/"}'), /too close to \//);
    assert.throws(() => parseWatchdogMessage('{"register":"mounts","path":"/home"}'), /too close to \//);
  });
});

describe('WatchdogServer', () => {
  const dir = makeTempDir();
  const tracker = new ProcessTracker();
  after(() => {
    tracker.killAll();
    dir.remove();
  });

  it('tears down when boxsmith disappears even if the pipe stays open', async () => {
    const boxsmith = spawn('sleep', ['100000'], { stdio: 'ignore' });
    const daemon = spawn('sleep', ['100000'], { stdio: 'ignore', detached: true });
    tracker.track(boxsmith.pid as number, daemon.pid as number);
    const server = new WatchdogServer({ runId: newRunId(), logDir: dir.path, graceMs: 500, parentPid: boxsmith.pid });
    const input = new PassThrough();
    const served = server.serve(input);
    input.write(encodeWatchdogMessage('register', { type: 'pid', pid: daemon.pid as number }));
    input.write('garbage\n');
    await pollUntil(() => server.registered.length === 1, 1000);
    boxsmith.kill('SIGKILL');
    assert.equal(await served, 0);
    assert.equal(isAlive(daemon.pid as number), false);
    const log = readFileSync(join(dir.path, 'watchdog.log'), 'utf8');
    assert.match(log, /ignored message: not JSON: garbage/);
    assert.match(log, new RegExp(`tearing down run .*: boxsmith \\(pid ${boxsmith.pid}\\) is gone`));
    assert.match(log, /teardown of run .* complete: no process of the run is left/);
  });

  it('never kills a registered pid or process group whose number was recycled by another process', async () => {
    const other = spawn('sleep', ['100000'], { stdio: 'ignore', detached: true });
    tracker.track(other.pid as number);
    const server = new WatchdogServer({ runId: newRunId(), logDir: dir.path, graceMs: 200 });
    // Registered with start times of processes that are long gone; the numbers now belong to `other`.
    server.handleLine(encodeWatchdogMessage('register', { type: 'pid', pid: other.pid as number, startTime: 1 }));
    server.handleLine(encodeWatchdogMessage('register', { type: 'pgid', pgid: other.pid as number, leaderStartTime: 1 }));
    assert.equal(await server.teardown('test'), true);
    assert.equal(isAlive(other.pid as number), true);
    other.kill('SIGKILL');
  });

  it('after the kill, unmounts what is mounted below a registered folder (a real loop mount and tmpfs), then removes the scratch folder', { skip: process.getuid?.() !== 0 ? 'mounting needs root' : false }, async () => {
    const work = join(dir.path, 'base.work-1');
    const image = join(dir.path, 'disk.img');
    mkdirSync(join(work, 'mnt'), { recursive: true });
    mkdirSync(join(work, 'rootfs', 'proc'), { recursive: true });
    execFileSync('truncate', ['-s', '8M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image]);
    execFileSync('mount', ['-o', 'loop', image, join(work, 'mnt')]);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(work, 'rootfs', 'proc')]);
    const loopDevices = () => execFileSync('losetup', ['-j', image], { encoding: 'utf8' }).trim();
    assert.notEqual(loopDevices(), '', 'the loop mount holds a loop device');
    const holder = spawn('sleep', ['100000'], { stdio: 'ignore', detached: true, cwd: join(work, 'mnt') });
    tracker.track(holder.pid as number);
    const server = new WatchdogServer({ runId: newRunId(), logDir: dir.path, graceMs: 200 });
    server.handleLine(encodeWatchdogMessage('register', { type: 'pid', pid: holder.pid as number }));
    server.handleLine(encodeWatchdogMessage('register', { type: 'mounts', path: work }));
    server.handleLine(encodeWatchdogMessage('register', { type: 'scratch', path: work }));
    assert.equal(await server.teardown('test'), true);
    assert.equal(isAlive(holder.pid as number), false);
    assert.deepEqual(mountsBelow(work), []);
    assert.equal(existsSync(work), false);
    assert.ok(await pollUntil(() => loopDevices() === '', 5000), `loop device still attached: ${loopDevices()}`);
    const log = readFileSync(join(dir.path, 'watchdog.log'), 'utf8');
    assert.match(log, new RegExp(`removed the run's scratch folder ${work}`));
  });
});

describe('Watchdog process', () => {
  const dir = makeTempDir();
  const tracker = new ProcessTracker();
  after(() => {
    tracker.killAll();
    dir.remove();
  });

  it('boxsmith SIGKILLed mid-stage: the watchdog leaves no process of the run alive within 10 s', async () => {
    const logDir = join(dir.path, 'killed-run');
    const driver = startDriver('watchdog-driver.ts', [logDir]);
    tracker.track(driver.pid);
    const ready = (await driver.ready) as { runId: string; watchdogPid: number; vmPid: number; roles: Record<string, number> };
    tracker.trackRun(ready.runId);
    const tree = Object.values(ready.roles);
    tracker.track(ready.watchdogPid, ready.vmPid, ...tree);
    assert.equal(tree.length, 4);
    assert.deepEqual(alivePids([...tree, ready.vmPid, ready.watchdogPid]).length, 6);
    // The bash that double-forks the orphan reports it just before exiting: let it go first.
    await pollUntil(() => runProcesses(ready.runId).length === tree.length, 2000);
    assert.deepEqual(runProcesses(ready.runId).sort(), [...tree].sort(), 'the stage tree carries the run tag');

    process.kill(driver.pid, 'SIGKILL');
    await driver.exit;
    const everything = [...tree, ready.vmPid];
    const cleaned = await pollUntil(() => alivePids(everything).length === 0 && runProcesses(ready.runId).length === 0, 10_000);
    assert.ok(cleaned, `still alive: ${alivePids(everything).join(', ')}`);
    assert.ok(await pollUntil(() => !isAlive(ready.watchdogPid), 5000), 'the watchdog exits after the teardown');

    const log = readFileSync(join(logDir, 'watchdog.log'), 'utf8');
    assert.match(log, /tearing down run .*: the pipe from boxsmith closed without goodbye/);
    assert.match(log, /still running after 2s, sending SIGKILL/);
    assert.match(log, /VirtualBox VM "boxsmith-test-vm": skipped "VBoxManage controlvm boxsmith-test-vm poweroff": VBoxManage is not installed/);
    assert.match(log, /libvirt domain "boxsmith-test-domain": (skipped "virsh destroy|virsh destroy boxsmith-test-domain →)/);
    assert.match(log, /teardown of run .* complete: no process of the run is left/);
  });

  it('goodbye: the watchdog exits without touching what is registered', async () => {
    const logDir = join(dir.path, 'normal-run');
    const runId = newRunId();
    const daemon = spawn('sleep', ['100000'], { stdio: 'ignore', detached: true });
    tracker.track(daemon.pid as number);
    const watchdog = await Watchdog.start({ runId, logDir, graceMs: 500 });
    tracker.track(watchdog.pid);
    assert.equal(watchdog.running, true);
    watchdog.register({ type: 'pid', pid: daemon.pid as number });
    watchdog.register({ type: 'vm', kind: 'virtualbox', name: 'gone' });
    watchdog.unregister({ type: 'vm', kind: 'virtualbox', name: 'gone' });
    await watchdog.goodbye();
    assert.equal(watchdog.running, false);
    assert.equal(isAlive(watchdog.pid), false);
    assert.equal(isAlive(daemon.pid as number), true);
    daemon.kill('SIGKILL');
    assert.ok(existsSync(watchdog.logFile));
    const log = readFileSync(watchdog.logFile, 'utf8');
    assert.match(log, /unregistered vm:virtualbox:gone/);
    assert.match(log, new RegExp(`goodbye: run ${runId} ended normally; still registered \\(left alone\\): pid:${daemon.pid}`));
  });
});
