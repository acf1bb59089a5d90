import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ownCgroupDir } from '../../src/exec/cgroup.ts';
import { DependencyDiedError, StageAbortedError, StageFailedError, StageTimeoutError } from '../../src/exec/errors.ts';
import { isAlive } from '../../src/exec/proc.ts';
import { RUN_ID_ENV, TASK_ID_ENV, defaultRunId, newRunId } from '../../src/exec/run-id.ts';
import { runSupervised, terminateRunProcesses, type SuperviseOptions } from '../../src/exec/supervise.ts';
import { VmProcessWatch } from '../../src/exec/vm-watch.ts';
import { ProcessTracker, alivePids, fixture, makeTempDir, pollUntil, recordRole, runProcesses } from './helpers.ts';

const GDB_PRESENT = spawnSync('gdb', ['--version']).status === 0;

describe('runSupervised', () => {
  const dir = makeTempDir();
  // Every supervised child carries its run's tag, so the tag scan finds whatever a failed test left.
  const tracker = new ProcessTracker();
  tracker.trackRun(defaultRunId());
  const options = (name: string, extra: Partial<SuperviseOptions> & Pick<SuperviseOptions, 'command' | 'args'>): SuperviseOptions => ({
    stage: name,
    logFile: join(dir.path, `${name}.log`),
    diagnosticsDir: join(dir.path, 'diagnostics'),
    timeoutMs: 30_000,
    graceMs: 1000,
    ...extra,
  });

  after(() => {
    tracker.killAll();
    dir.remove();
  });

  it('logs output with timestamps and stream tags, passes lines to onLine, and resolves on exit 0', async () => {
    const lines: Array<[string, string]> = [];
    const result = await runSupervised(
      options('hello', {
        command: 'bash',
        args: ['-c', 'echo "to stdout"; echo "to stderr" >&2; printf "no newline at end"'],
        onLine: (line, stream) => lines.push([stream, line]),
      }),
    );
    assert.equal(result.exitCode, 0);
    assert.equal(result.signal, null);
    assert.deepEqual(result.leftoversKilled, []);
    assert.deepEqual(
      lines.sort((a, b) => a[1].localeCompare(b[1])),
      [
        ['stdout', 'no newline at end'],
        ['stderr', 'to stderr'],
        ['stdout', 'to stdout'],
      ],
    );
    const log = readFileSync(result.logFile, 'utf8');
    assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[out\] to stdout$/m);
    assert.match(log, /^\S+Z \[err\] to stderr$/m);
    assert.match(log, /^\S+Z \[boxsmith\] stage "hello": bash -c /m);
    assert.match(log, /\[boxsmith\] bash exited with code 0 after /);
  });

  it('runs the child in its own session and process group, with stdin closed and the run tags in its environment', async () => {
    const runId = newRunId();
    tracker.trackRun(runId);
    const lines: string[] = [];
    const result = await runSupervised(
      options('identity', {
        command: 'bash',
        // /proc/$$/stat: pid (comm) state ppid pgrp session ...
        args: ['-c', `read -r pid comm state ppid pgrp session rest < /proc/$$/stat; echo "ids $pid $pgrp $session"; echo "tags $${RUN_ID_ENV} $${TASK_ID_ENV}"; read -r x; echo "read $?"`],
        runId,
        env: { SOMETHING_EXTRA: 'yes' },
        onLine: (line) => lines.push(line.replace(/\s+/g, ' ').trim()),
      }),
    );
    const pid = result.pid;
    assert.ok(lines.includes(`ids ${pid} ${pid} ${pid}`), lines.join('\n'));
    assert.match(lines.find((l) => l.startsWith('tags ')) ?? '', new RegExp(`^tags ${runId} ${runId}\\.\\d+$`));
    assert.ok(lines.includes('read 1'), 'stdin should be at EOF');
  });

  it('rejects with StageFailedError carrying exit code and the last lines of output, unless allowFailure', async () => {
    const script = 'for i in $(seq 1 30); do echo "line $i"; done; echo "fatal: disk full" >&2; exit 3';
    await assert.rejects(runSupervised(options('failing', { command: 'bash', args: ['-c', script] })), (error: unknown) => {
      assert.ok(error instanceof StageFailedError, String(error));
      assert.equal(error.exitCode, 3);
      assert.equal(error.signal, null);
      assert.equal(error.logTail.length, 20);
      assert.equal(error.logTail.at(-1), 'fatal: disk full');
      assert.match(error.message, /stage "failing" failed: bash exited with code 3 \(log: .*failing\.log\)/);
      assert.match(error.message, /fatal: disk full/);
      return true;
    });
    const tolerated = await runSupervised(options('tolerated', { command: 'bash', args: ['-c', 'exit 4'], allowFailure: true }));
    assert.equal(tolerated.exitCode, 4);
  });

  it('says clearly when the program does not exist', async () => {
    await assert.rejects(runSupervised(options('missing', { command: 'boxsmith-no-such-program', args: [] })), (error: unknown) => {
      assert.ok(error instanceof StageFailedError);
      assert.match(error.message, /could not start boxsmith-no-such-program: boxsmith-no-such-program was not found on PATH/);
      return true;
    });
  });

  it('kills what the program left running when it exits (a QEMU left behind by Packer), or keeps it on request', async () => {
    const leaver = 'setsid sleep 100000 & echo "left $!"; exit 0';
    const killedLines: string[] = [];
    const killed = await runSupervised(options('leaver', { command: 'bash', args: ['-c', leaver], onLine: (l) => killedLines.push(l) }));
    const killedPid = Number(killedLines.find((l) => l.startsWith('left '))?.split(' ')[1]);
    assert.deepEqual(
      killed.leftoversKilled.map((p) => p.pid),
      [killedPid],
    );
    assert.equal(isAlive(killedPid), false);

    const runId = newRunId();
    tracker.trackRun(runId);
    const keptLines: string[] = [];
    const kept = await runSupervised(options('keeper', { command: 'bash', args: ['-c', leaver], runId, leftovers: 'keep', onLine: (l) => keptLines.push(l) }));
    const keptPid = Number(keptLines.find((l) => l.startsWith('left '))?.split(' ')[1]);
    assert.deepEqual(
      kept.leftoversKept.map((p) => p.pid),
      [keptPid],
    );
    assert.equal(isAlive(keptPid), true);
    const ended = await terminateRunProcesses(runId, { graceMs: 1000 });
    assert.deepEqual(
      ended.map((p) => p.pid),
      [keptPid],
    );
    assert.equal(isAlive(keptPid), false);
  });

  it('an abort stops the child (SIGTERM) and rejects with StageAbortedError', async () => {
    const controller = new AbortController();
    let pid = 0;
    const run = runSupervised(
      options('aborted', {
        command: 'bash',
        args: ['-c', 'echo "up $$"; exec sleep 100000'],
        signal: controller.signal,
        onLine: (line) => {
          pid = Number(line.split(' ')[1]);
          controller.abort(new Error('user pressed Ctrl-C'));
        },
      }),
    );
    await assert.rejects(run, (error: unknown) => {
      assert.ok(error instanceof StageAbortedError, String(error));
      assert.match(error.message, /stage "aborted" was stopped: user pressed Ctrl-C/);
      return true;
    });
    assert.equal(isAlive(pid), false);
  });

  for (const containment of ['cgroup (where available) + tag', 'process group + env tag only'] as const) {
    it(`time limit on a SIGTERM-ignoring tree with a setsid grandchild and a double-forked orphan [${containment}]: diagnostics, then SIGKILL after the grace period and nothing alive`, async (t) => {
      const graceMs = 2000;
      const timeoutMs = 2500;
      const roles = new Map<string, number>();
      const startedAt = Date.now();
      const run = runSupervised(
        options(`stubborn-${containment === 'process group + env tag only' ? 'tag' : 'cgroup'}`, {
          command: fixture('stubborn-tree.sh'),
          args: [],
          timeoutMs,
          graceMs,
          cgroup: containment !== 'process group + env tag only',
          onLine: (line) => recordRole(roles, line),
        }),
      );
      let timeoutError: StageTimeoutError | undefined;
      await run.catch((error: unknown) => {
        if (error instanceof StageTimeoutError) timeoutError = error;
        else throw error;
      });
      const endedAt = Date.now();

      assert.deepEqual([...roles.keys()].sort(), ['child', 'grandchild', 'orphan', 'setsid-grandchild']);
      assert.ok(timeoutError, 'expected StageTimeoutError');
      // Nothing of the tree is alive once runSupervised has returned: the SIGTERM-ignoring ones were SIGKILLed after the grace period.
      assert.deepEqual(alivePids(roles.values()), []);
      t.diagnostic(`everything gone ${endedAt - startedAt - timeoutMs} ms after the limit (grace: ${graceMs} ms)`);

      assert.match(timeoutError.message, /stage "stubborn-\w+" timed out after 2.5s; diagnostics: .*stubborn-\w+-timeout-.*\.txt/);
      const diagnosticsFile = timeoutError.diagnosticsFile as string;
      assert.ok(existsSync(diagnosticsFile));
      const diagnostics = readFileSync(diagnosticsFile, 'utf8');
      for (const [role, pid] of roles) {
        const section = diagnostics.split(`==== process ${pid} `)[1]?.split('\n====')[0];
        assert.ok(section, `diagnostics name ${role} ${pid}`);
        assert.match(section, /^wchan: +\S+/m, `${role} has a wchan`);
        assert.match(section, /kernel stack \(\/proc\/\d+\/stack\):\n {2}(\[<0>\]|\(unreadable)/, `${role} has a kernel stack (or why not)`);
        if (GDB_PRESENT) assert.match(diagnostics, new RegExp(`==== gdb backtrace of process ${pid} [^\\n]*\\n[\\s\\S]*?#0 `), `gdb backtrace of ${role}`);
      }
      assert.match(diagnostics, /left process group/);
      const log = readFileSync(join(dir.path, `${timeoutError.stage}.log`), 'utf8');
      assert.match(log, /saving diagnostics before stopping the stage/);
      assert.match(log, /still running after the 2s grace period, sending SIGKILL/);
      assert.match(log, /sending SIGTERM to process group \d+ and to \d process\(es\) that left it/);
      assert.match(log, /still running after the 2s grace period, sending SIGKILL/);
    });
  }

  it('sends SIGQUIT to Go programs such as packer at the limit: the goroutine dump lands in the stage log; the console tail in the diagnostics', async () => {
    const consoleLog = join(dir.path, 'serial.log');
    writeFileSync(consoleLog, `${Array.from({ length: 150 }, (_, i) => `boot message ${i}`).join('\n')}\nubuntu login: \n`);
    let timeoutError: StageTimeoutError | undefined;
    await runSupervised(
      options('packer-build', { command: fixture('bin/packer'), args: ['build', 'box.pkr.hcl'], timeoutMs: 1500, graceMs: 1000, consoleLogs: [consoleLog] }),
    ).catch((error: unknown) => {
      timeoutError = error as StageTimeoutError;
    });
    assert.ok(timeoutError instanceof StageTimeoutError, String(timeoutError));
    const diagnostics = readFileSync(timeoutError.diagnosticsFile as string, 'utf8');
    assert.match(diagnostics, /==== Go programs ====\nSIGQUIT sent to \d+ \(packer\)/);
    assert.match(diagnostics, /==== VM serial console: last 100 lines of .*serial\.log ====\n(.*\n)*ubuntu login:/);
    assert.doesNotMatch(diagnostics, /boot message 49\n/);
    assert.match(diagnostics, /boot message 149\n/);
    const log = readFileSync(join(dir.path, 'packer-build.log'), 'utf8');
    assert.match(log, /\[err\] goroutine 1 \[select, 12 minutes\]:/);
  });

  it('a builder whose VM died while it keeps waiting fails within seconds, naming the dead process', async () => {
    const found: number[] = [];
    const vmWatch = new VmProcessWatch({
      label: 'VM',
      match: (p) => p.argv.some((arg) => arg.endsWith('fake-vm.sh')),
      onFound: (vm) => found.push(vm.pid),
    });
    const run = runSupervised(
      options('vm-build', {
        command: fixture('fake-builder.sh'),
        args: [],
        timeoutMs: 60_000,
        watch: vmWatch.check,
        watchIntervalMs: 200,
      }),
    );
    await assert.rejects(run, (error: unknown) => {
      assert.ok(error instanceof DependencyDiedError, String(error));
      const vm = vmWatch.vm;
      assert.ok(vm, 'the VM process was seen');
      assert.deepEqual(found, [vm.pid]);
      assert.match(error.message, new RegExp(`stage "vm-build" stopped: VM process ${vm.pid} \\(bash .*fake-vm\\.sh\\) exited while stage "vm-build" was still waiting on it`));
      return true;
    });
    // The VM lives 1 s: the stage ended on its death (DependencyDiedError above), not at its 60 s limit.
    const log = readFileSync(join(dir.path, 'vm-build.log'), 'utf8');
    const builderPid = Number(/started pid (\d+)/.exec(log)?.[1]);
    assert.equal(isAlive(builderPid), false);
    assert.match(log, /ending the stage: VM process \d+/);
  });

  it('a watch callback that throws ends the stage with that error', async () => {
    await assert.rejects(
      runSupervised(options('bad-watch', { command: 'sleep', args: ['100000'], watch: () => { throw new Error('watch exploded'); }, watchIntervalMs: 50 })),
      /watch callback failed: watch exploded/,
    );
  });

  it('a broken onLine callback does not break supervision', async () => {
    const result = await runSupervised(
      options('bad-online', { command: 'bash', args: ['-c', 'echo one; echo two'], onLine: () => { throw new Error('display crashed'); } }),
    );
    assert.equal(result.exitCode, 0);
    assert.match(readFileSync(result.logFile, 'utf8'), /onLine callback failed: display crashed/);
  });

  it('removes its cgroups and leaves no tagged process behind', async () => {
    const base = ownCgroupDir();
    if ('dir' in base) {
      assert.deepEqual(readdirSync(base.dir).filter((name) => name.startsWith(`boxsmith-${defaultRunId()}`)), []);
    }
    assert.ok(await pollUntil(() => runProcesses(defaultRunId()).length === 0, 2000));
  });
});
