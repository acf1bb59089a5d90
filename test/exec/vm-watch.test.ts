// Which process the build's VM watch takes for the VM: Packer's qemu driver runs
// `qemu-system-x86_64 -version` just before it starts the VM, and a watch that latched on to that
// probe reported "QEMU process … exited" a second into a build (seen with two installer builds in
// parallel, test/e2e/installer.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readProcStat } from '../../src/exec/proc.ts';
import type { StageProcess, SupervisedTaskView } from '../../src/exec/supervise.ts';
import { isQemuProcess, VmProcessWatch } from '../../src/exec/vm-watch.ts';

function processOf(pid: number, argv: string[], comm = 'qemu-system-x86'): StageProcess {
  return { pid, ppid: 1, pgid: pid, sid: pid, state: 'S', comm, utimeTicks: 0, stimeTicks: 0, numThreads: 1, startTime: pid * 10, argv };
}

/** The VM as Packer 1.6.6 started it in the installer test (its log's "Executing" line, shortened). */
const PACKER_VM = ['/usr/bin/qemu-system-x86_64', '-cpu', 'max', '-netdev', 'user,id=user.0,hostfwd=tcp:127.0.0.1:3628-:22', '-m', '1024M', '-vnc', '127.0.0.1:97,password', '-boot', 'once=d', '-name', 'box.img'];

describe('the VM watch and QEMU processes', () => {
  it('a qemu-system process asked for its version or help is not a VM; one started by Packer with a disk is', () => {
    for (const query of [['-version'], ['--version'], ['-help'], ['-h'], ['-machine', 'help'], ['-cpu', '?']]) {
      assert.equal(isQemuProcess(processOf(1, ['/usr/bin/qemu-system-x86_64', ...query])), false, query.join(' '));
    }
    assert.equal(isQemuProcess(processOf(2, PACKER_VM)), true);
    // /proc/PID/cmdline unreadable: the kernel's name is all there is, and a VM is the safe guess.
    assert.equal(isQemuProcess(processOf(3, [])), true);
    assert.equal(isQemuProcess(processOf(4, ['/usr/bin/qemu-img', 'info', 'box.img'], 'qemu-img')), false);
  });

  it('with the version probe and the VM both running, the watch takes the VM, and the probe ending is no failure', () => {
    let listed: StageProcess[] = [];
    const task: SupervisedTaskView = { stage: 'build', runId: 'r', taskId: 't', pid: 100, pgid: 100, processes: () => listed };
    const found: number[] = [];
    const watch = new VmProcessWatch({ label: 'QEMU', match: isQemuProcess, onFound: (vm) => found.push(vm.pid) });
    listed = [processOf(process.pid, ['/usr/bin/qemu-system-x86_64', '-version'])];
    assert.equal(watch.check(task), null);
    assert.equal(watch.vm, null, 'the probe alone is not taken for the VM');
    // The VM is this test's own process (alive for the whole test), so the watch's liveness check reads a real /proc entry.
    listed = [{ ...processOf(process.pid, PACKER_VM), startTime: readProcStat(process.pid)!.startTime }];
    assert.equal(watch.check(task), null);
    assert.deepEqual(found, [process.pid]);
    assert.equal(watch.check(task), null, 'the VM is alive: nothing to report');
  });
});

