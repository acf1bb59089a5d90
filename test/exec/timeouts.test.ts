import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DurationParseError,
  TimeoutOverrideError,
  formatDuration,
  parseDuration,
  parseTimeoutOverrides,
  setLongTimeout,
} from '../../src/exec/timeouts.ts';

describe('parseDuration', () => {
  it('reads single units', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('5s'), 5000);
    assert.equal(parseDuration('90m'), 90 * 60_000);
    assert.equal(parseDuration('2h'), 2 * 3_600_000);
    assert.equal(parseDuration('1d'), 86_400_000);
  });

  it('reads compound and fractional durations', () => {
    assert.equal(parseDuration('1h30m'), 90 * 60_000);
    assert.equal(parseDuration('1m30s500ms'), 90_500);
    assert.equal(parseDuration('1.5h'), 90 * 60_000);
    assert.equal(parseDuration('.5s'), 500);
    assert.equal(parseDuration(' 10S '), 10_000);
  });

  it('rejects a number without unit, naming it', () => {
    assert.throws(() => parseDuration('90'), (error: unknown) => {
      assert.ok(error instanceof DurationParseError);
      assert.equal(error.token, '90');
      assert.match(error.message, /"90" has no unit/);
      return true;
    });
    assert.throws(() => parseDuration('1h30'), (error: unknown) => error instanceof DurationParseError && error.token === '30');
  });

  it('rejects unknown units and garbage, naming the bad token', () => {
    assert.throws(() => parseDuration('90x'), (error: unknown) => {
      assert.ok(error instanceof DurationParseError);
      assert.equal(error.token, '90x');
      assert.match(error.message, /unknown unit "x"/);
      return true;
    });
    assert.throws(() => parseDuration('5m!'), (error: unknown) => error instanceof DurationParseError && error.token === '!');
    assert.throws(() => parseDuration('m5'), (error: unknown) => error instanceof DurationParseError && error.token === 'm5');
    assert.throws(() => parseDuration('-5s'), DurationParseError);
    assert.throws(() => parseDuration(''), /empty duration/);
  });
});

describe('formatDuration', () => {
  it('prints the shortest readable form', () => {
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(60_000), '1m');
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(3_723_000), '1h2m3s');
  });

  it('round-trips through parseDuration', () => {
    for (const text of ['90m', '1h30m', '5s', '250ms', '2h0m1s']) assert.equal(parseDuration(formatDuration(parseDuration(text))), parseDuration(text));
  });
});

describe('parseTimeoutOverrides', () => {
  it('parses stage=duration pairs', () => {
    assert.deepEqual(parseTimeoutOverrides('build=90m,smoke=20m'), { build: 5_400_000, smoke: 1_200_000 });
    assert.deepEqual(parseTimeoutOverrides(' build = 1h30m , run=3h '), { build: 5_400_000, run: 10_800_000 });
    assert.deepEqual(parseTimeoutOverrides(''), {});
  });

  it('names the bad item', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['build', 'build', /expected STAGE=DURATION/],
      ['build=90', 'build=90', /"90" has no unit/],
      ['build=90m,smoke=fast', 'smoke=fast', /smoke=fast/],
      ['build=90m,,smoke=1m', '', /empty item/],
      ['=5m', '=5m', /not a stage name/],
      ['build=0s', 'build=0s', /greater than zero/],
      ['build=1m,build=2m', 'build=2m', /given twice/],
    ];
    for (const [input, token, message] of cases) {
      assert.throws(
        () => parseTimeoutOverrides(input),
        (error: unknown) => {
          assert.ok(error instanceof TimeoutOverrideError, `${input}: ${String(error)}`);
          assert.equal(error.token, token, input);
          assert.match(error.message, message);
          return true;
        },
      );
    }
  });

  it('checks stage names when the known stages are given', () => {
    assert.deepEqual(parseTimeoutOverrides('build=1m,run=2h', ['build', 'smoke']), { build: 60_000, run: 7_200_000 });
    assert.throws(() => parseTimeoutOverrides('biuld=1m', ['build', 'smoke']), /unknown stage "biuld" \(known: build, smoke, run\)/);
  });
});

describe('setLongTimeout', () => {
  it('fires for short delays and can be cancelled', async () => {
    let fired = 0;
    setLongTimeout(() => fired++, 10);
    const cancel = setLongTimeout(() => fired++, 10);
    cancel();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(fired, 1);
  });

  it('does not fire at once for delays beyond the 24.8-day timer range', async () => {
    let fired = false;
    const cancel = setLongTimeout(() => (fired = true), parseDuration('30d'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    cancel();
    assert.equal(fired, false);
  });
});
