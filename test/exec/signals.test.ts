import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exitCodeForSignal, installInterruptHandlers } from '../../src/exec/signals.ts';
import { InterruptedError } from '../../src/exec/errors.ts';
import { ProcessTracker, makeTempDir, pollUntil, runProcesses, sleep, startDriver } from './helpers.ts';

describe('interrupts', () => {
  const dir = makeTempDir();
  const tracker = new ProcessTracker();
  after(() => {
    tracker.killAll();
    dir.remove();
  });

  const startStepsDriver = (name: string, mode: 'polite' | 'stubborn') => {
    const orderFile = join(dir.path, `${name}.order`);
    const driver = startDriver('steps-driver.ts', [mode, orderFile, join(dir.path, name)]);
    tracker.track(driver.pid);
    const order = (): string[] => readFileSync(orderFile, 'utf8').trim().split('\n');
    return { driver, order };
  };

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} in the middle of a multi-step run: cleanups run in reverse order, exit ${code}`, async () => {
      const { driver, order } = startStepsDriver(signal, 'polite');
      const { runId } = (await driver.ready) as { runId: string };
      tracker.trackRun(runId);
      assert.equal(runProcesses(runId).length, 1, 'step c has its child running');
      process.kill(driver.pid, signal);
      const exit = await driver.exit;
      assert.deepEqual(exit, { code, signal: null }, driver.stderr());
      assert.deepEqual(order(), ['run:a', 'run:b', 'run:c', 'failed:c:StageAbortedError', 'cleanup:c', 'cleanup:b', 'cleanup:a', 'error:StageAbortedError']);
      assert.deepEqual(runProcesses(runId), []);
      assert.match(driver.stderr(), signal === 'SIGINT' ? /press Ctrl-C again to kill everything now/ : /received SIGTERM; stopping/);
    });
  }

  it('a second SIGINT kills everything at once and exits 130 without waiting for the grace period', async () => {
    const { driver, order } = startStepsDriver('double', 'stubborn');
    const { runId } = (await driver.ready) as { runId: string };
    tracker.trackRun(runId);
    // The four named processes are up; the bash that double-forked the orphan may still be on its way out.
    await pollUntil(() => runProcesses(runId).length === 4, 5000);
    const tree = runProcesses(runId);
    tracker.track(...tree);
    assert.equal(tree.length, 4);
    process.kill(driver.pid, 'SIGINT');
    // The first SIGINT starts the graceful stop: SIGTERM, which the tree ignores, then a one-minute grace period.
    await pollUntil(() => readFileSync(join(dir.path, 'double', 'c.log'), 'utf8').includes('sending SIGTERM'), 5000);
    // A person's second Ctrl-C (a repeat within 0.5 s counts as the same keypress delivered twice).
    await sleep(700);
    process.kill(driver.pid, 'SIGINT');
    const exit = await driver.exit;
    assert.deepEqual(exit, { code: 130, signal: null }, driver.stderr());
    // Nothing of the run survives, long before the minute of grace would have ended.
    assert.ok(await pollUntil(() => runProcesses(runId).length === 0, 5000), `still alive: ${runProcesses(runId).join(', ')}`);
    assert.deepEqual(order(), ['run:a', 'run:b', 'run:c']);
    assert.match(driver.stderr(), /received SIGINT again; killed 1 running stage\(s\)/);
  });

  it('maps signals to shell exit codes, aborts with an InterruptedError, and takes a repeat within 0.5 s as the same interrupt', async () => {
    assert.equal(exitCodeForSignal('SIGINT'), 130);
    assert.equal(exitCodeForSignal('SIGTERM'), 143);
    assert.equal(exitCodeForSignal('SIGHUP'), 129);

    const controller = new AbortController();
    const messages: string[] = [];
    const exits: number[] = [];
    const handle = installInterruptHandlers(controller, { log: (m) => messages.push(m), exit: (c) => exits.push(c) });
    try {
      assert.equal(handle.exitCode, null);
      process.emit('SIGHUP', 'SIGHUP');
      assert.ok(controller.signal.reason instanceof InterruptedError);
      assert.equal((controller.signal.reason as InterruptedError).signal, 'SIGHUP');
      assert.equal(handle.exitCode, 129);
      // The same signal delivered twice at once (npm run forwards it too) is one interrupt.
      process.emit('SIGHUP', 'SIGHUP');
      assert.deepEqual(exits, []);
      await sleep(600);
      process.emit('SIGINT', 'SIGINT');
      assert.deepEqual(exits, [129]);
      assert.equal(messages.length, 2);
    } finally {
      handle.dispose();
    }
  });
});
