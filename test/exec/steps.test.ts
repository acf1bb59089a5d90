import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { StageAbortedError, StageTimeoutError, TimeLimitReached } from '../../src/exec/errors.ts';
import { defaultRunId } from '../../src/exec/run-id.ts';
import { runSteps, type CleanupContext, type Step, type StepEvent, type StepsReport } from '../../src/exec/steps.ts';
import { runSupervised } from '../../src/exec/supervise.ts';
import { ProcessTracker, makeTempDir, runProcesses, sleep } from './helpers.ts';

interface Journal {
  entries: string[];
}

/** A step that records its run and cleanup in the journal; `behaviour` decides how run() ends. */
function step(name: string, behaviour: 'ok' | 'fail' | 'hang' | 'hang-ignoring-abort' = 'ok', extra: Partial<Step<Journal>> = {}): Step<Journal> {
  return {
    name,
    timeoutMs: 10_000,
    async run(journal, ctx) {
      journal.entries.push(`run:${name}`);
      if (behaviour === 'fail') throw new Error(`${name} broke`);
      if (behaviour === 'hang') {
        await new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true }));
      }
      if (behaviour === 'hang-ignoring-abort') await new Promise(() => {});
    },
    async cleanup(journal, ctx: CleanupContext) {
      journal.entries.push(`cleanup:${name}:${ctx.outcome}`);
    },
    ...extra,
  };
}

describe('runSteps', () => {
  const tracker = new ProcessTracker();
  tracker.trackRun(defaultRunId());
  after(() => tracker.killAll());

  it('runs steps in order and, like multistep, all cleanups in reverse order afterwards', async () => {
    const journal: Journal = { entries: [] };
    const report = await runSteps([step('a'), step('b'), step('c')], journal);
    assert.deepEqual(journal.entries, ['run:a', 'run:b', 'run:c', 'cleanup:c:succeeded', 'cleanup:b:succeeded', 'cleanup:a:succeeded']);
    assert.equal(report.outcome, 'succeeded');
    assert.deepEqual(
      report.steps.map((s) => [s.name, s.status, s.cleanup?.status]),
      [
        ['a', 'succeeded', 'succeeded'],
        ['b', 'succeeded', 'succeeded'],
        ['c', 'succeeded', 'succeeded'],
      ],
    );
    for (const record of report.steps) assert.ok(record.durationMs >= 0 && record.startedAt instanceof Date);
  });

  it('on failure stops, cleans up the started steps in reverse order, and throws the original error', async () => {
    const journal: Journal = { entries: [] };
    let finished: StepsReport | undefined;
    await assert.rejects(
      runSteps([step('a'), step('b', 'fail'), step('c')], journal, { onFinish: (report) => (finished = report) }),
      { message: 'b broke' },
    );
    assert.deepEqual(journal.entries, ['run:a', 'run:b', 'cleanup:b:failed', 'cleanup:a:failed']);
    assert.equal(finished?.outcome, 'failed');
    assert.deepEqual(
      finished?.steps.map((s) => [s.name, s.status]),
      [
        ['a', 'succeeded'],
        ['b', 'failed'],
      ],
    );
  });

  it('a failing cleanup does not stop the other cleanups nor replace the original error', async () => {
    const journal: Journal = { entries: [] };
    const brokenCleanup = step('b', 'ok', {
      async cleanup(j) {
        j.entries.push('cleanup:b:broken');
        throw new Error('cleanup of b broke');
      },
    });
    let finished: StepsReport | undefined;
    await assert.rejects(runSteps([step('a'), brokenCleanup, step('c', 'fail')], journal, { onFinish: (r) => (finished = r) }), {
      message: 'c broke',
    });
    assert.deepEqual(journal.entries, ['run:a', 'run:b', 'run:c', 'cleanup:c:failed', 'cleanup:b:broken', 'cleanup:a:failed']);
    assert.equal(finished?.steps[1]?.cleanup?.status, 'failed');
    assert.match(String((finished?.steps[1]?.cleanup?.error as Error).message), /cleanup of b broke/);
  });

  it('a step time limit aborts the step, runs the cleanups and throws StageTimeoutError', async () => {
    const journal: Journal = { entries: [] };
    await assert.rejects(runSteps([step('a'), step('b', 'hang', { timeoutMs: 200 }), step('c')], journal), (error: unknown) => {
      assert.ok(error instanceof StageTimeoutError);
      assert.equal(error.stage, 'b');
      assert.equal(error.limitMs, 200);
      assert.match(error.message, /stage "b" timed out after 200ms/);
      return true;
    });
    assert.deepEqual(journal.entries, ['run:a', 'run:b', 'cleanup:b:timed-out', 'cleanup:a:timed-out']);
  });

  it('abandons a step that ignores its abort after settleMs, so runSteps itself cannot hang', async () => {
    const journal: Journal = { entries: [] };
    await assert.rejects(
      runSteps([step('a'), step('stuck', 'hang-ignoring-abort', { timeoutMs: 100 })], journal, { settleMs: 100 }),
      (error: unknown) => error instanceof StageTimeoutError && /did not stop within 100ms and was abandoned/.test(error.message),
    );
    assert.deepEqual(journal.entries, ['run:a', 'run:stuck', 'cleanup:stuck:timed-out', 'cleanup:a:timed-out']);
  });

  it('command-line overrides win over the step limit, and "run" limits the whole run', async () => {
    const journal: Journal = { entries: [] };
    await assert.rejects(runSteps([step('a', 'hang', { timeoutMs: 60_000 })], journal, { timeoutOverrides: { a: 150 } }), (error: unknown) => {
      return error instanceof StageTimeoutError && error.limitMs === 150 && error.scope === 'stage';
    });
    const slow = (name: string): Step<Journal> => ({
      name,
      timeoutMs: 10_000,
      async run(j, ctx) {
        j.entries.push(`run:${name}`);
        await sleep(150);
        if (ctx.signal.aborted) throw ctx.signal.reason as Error;
      },
    });
    const runJournal: Journal = { entries: [] };
    await assert.rejects(runSteps([slow('x'), slow('y'), slow('z')], runJournal, { timeoutOverrides: { run: 250 } }), (error: unknown) => {
      assert.ok(error instanceof StageTimeoutError, String(error));
      assert.equal(error.scope, 'run');
      assert.equal(error.stage, 'y');
      assert.match(error.message, /the run's time limit of 250ms was reached during stage "y"/);
      return true;
    });
    assert.deepEqual(runJournal.entries, ['run:x', 'run:y']);
  });

  it('an abort stops the current step, skips the rest and runs the cleanups (which are not aborted)', async () => {
    const journal: Journal = { entries: [] };
    const controller = new AbortController();
    const events: string[] = [];
    const onEvent = (event: StepEvent): void => {
      events.push(event.type === 'step-start' || event.type === 'cleanup-start' ? `${event.type}:${event.step}` : `${event.type}:${event.record.name}`);
    };
    const slowCleanup = step('a', 'ok', {
      async cleanup(j, ctx) {
        await sleep(50);
        j.entries.push(`cleanup:a:${ctx.outcome}:${ctx.signal.aborted ? 'aborted' : 'live'}`);
      },
    });
    setTimeout(() => controller.abort(new Error('user pressed Ctrl-C')), 100);
    await assert.rejects(runSteps([slowCleanup, step('b', 'hang'), step('c')], journal, { signal: controller.signal, onEvent }), (error: unknown) => {
      // Step b rejected with a plain Error (the abort reason); runSteps reports it as an abort naming the step, keeping it as cause.
      assert.ok(error instanceof StageAbortedError, String(error));
      assert.match(error.message, /stage "b" was stopped: user pressed Ctrl-C/);
      assert.equal((error.cause as Error).message, 'user pressed Ctrl-C');
      return true;
    });
    assert.deepEqual(journal.entries, ['run:a', 'run:b', 'cleanup:b:aborted', 'cleanup:a:aborted:live']);
    assert.deepEqual(events, ['step-start:a', 'step-end:a', 'step-start:b', 'step-end:b', 'cleanup-start:b', 'cleanup-end:b', 'cleanup-start:a', 'cleanup-end:a']);
  });

  it('an abort before the run starts runs no step', async () => {
    const journal: Journal = { entries: [] };
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await assert.rejects(runSteps([step('a')], journal, { signal: controller.signal }), StageAbortedError);
    assert.deepEqual(journal.entries, []);
  });

  it('bounds each cleanup by its own time limit', async () => {
    const journal: Journal = { entries: [] };
    const stuckCleanup = step('a', 'ok', {
      cleanupTimeoutMs: 100,
      async cleanup(j, ctx) {
        j.entries.push('cleanup:a:started');
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        throw ctx.signal.reason as Error;
      },
    });
    const report = await runSteps([stuckCleanup, step('b')], journal);
    assert.deepEqual(journal.entries, ['run:a', 'run:b', 'cleanup:b:succeeded', 'cleanup:a:started']);
    assert.equal(report.steps[0]?.cleanup?.status, 'timed-out');
    assert.ok(report.steps[0]?.cleanup?.error instanceof StageTimeoutError);
    assert.equal((report.steps[0]?.cleanup?.error as StageTimeoutError).scope, 'cleanup');
  });

  it('refuses steps without a time limit and duplicate names', async () => {
    const unlimited: Step<Journal> = { name: 'forever', run: async () => {} };
    await assert.rejects(runSteps([unlimited], { entries: [] }), /step "forever" has no time limit/);
    await runSteps([unlimited], { entries: [] }, { defaultTimeoutMs: 1000 });
    await assert.rejects(runSteps([step('a'), step('a')], { entries: [] }), /used twice/);
  });

  it('a step time limit covers the whole step, and reaches the running child with diagnostics', async () => {
    const dir = makeTempDir();
    try {
      const children: string[] = [];
      // Two children, each well within its own limit, but together longer than the step's 1.2 s.
      const twoChildren: Step<Journal> = {
        name: 'provision',
        timeoutMs: 1200,
        async run(_journal, ctx) {
          for (const part of ['first', 'second']) {
            children.push(part);
            await runSupervised({
              stage: 'provision',
              command: 'sleep',
              args: ['0.8'],
              logFile: join(dir.path, 'provision.log'),
              diagnosticsDir: join(dir.path, 'diagnostics'),
              timeoutMs: 60_000,
              graceMs: 500,
              signal: ctx.signal,
            });
          }
        },
      };
      await assert.rejects(runSteps([twoChildren], { entries: [] }), (error: unknown) => {
        assert.ok(error instanceof StageTimeoutError, String(error));
        assert.equal(error.limitMs, 1200);
        assert.ok(error.diagnosticsFile?.startsWith(join(dir.path, 'diagnostics', 'provision-timeout-')), String(error.diagnosticsFile));
        assert.match(error.message, /stage "provision" timed out after 1.2s; diagnostics: /);
        return true;
      });
      assert.deepEqual(children, ['first', 'second']);
      assert.deepEqual(runProcesses(defaultRunId()), []);
    } finally {
      dir.remove();
    }
  });

  it('TimeLimitReached names the limit', () => {
    assert.match(new TimeLimitReached('stage', 'build', 5_400_000).message, /"build" was reached/);
    assert.match(new TimeLimitReached('run', 'run', 10_800_000).message, /run's time limit of 3h/);
  });
});
