// pipeThroughProgram with real programs: gzip/gunzip round trip, a failing program's last stderr
// line, a missing program, an output that fails, and an abort that stops the program's whole process group (a child it
// left in the group included) before the promise settles.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FilterProgramError, pipeThroughProgram } from '../../src/exec/filter-program.ts';
import { run } from '../helpers.ts';

function collector(): { sink: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      callback();
    },
  });
  return { sink, bytes: () => Buffer.concat(parts) };
}

test('bytes through gzip -c come out as a gzip stream of the same bytes', async () => {
  const input = randomBytes(3 << 20);
  const { sink, bytes } = collector();
  await pipeThroughProgram(Readable.from([input]), sink, { command: 'gzip', args: ['-c', '-1'] });
  assert.ok(gunzipSync(bytes()).equals(input));
});

test('a program that fails is a FilterProgramError with its exit and the last line it printed', async () => {
  const { sink } = collector();
  const failing = pipeThroughProgram(Readable.from([Buffer.from('not gzip at all\n')]), sink, { command: 'gzip', args: ['-dc'] });
  await assert.rejects(failing, (error: unknown) => {
    assert.ok(error instanceof FilterProgramError);
    assert.match(error.message, /^gzip failed \(exit 1\): gzip: stdin: not in gzip format$/);
    return true;
  });
});

test('a program that is not there is a FilterProgramError saying it could not start', async () => {
  const { sink } = collector();
  await assert.rejects(
    pipeThroughProgram(Readable.from([Buffer.from('x')]), sink, { command: 'boxsmith-no-such-filter', args: [] }),
    /^FilterProgramError: boxsmith-no-such-filter could not start: spawn boxsmith-no-such-filter ENOENT$/,
  );
});

test('an abort stops the program and what it started in its group before the promise settles', async () => {
  const marker = `boxsmith-filter-test-${process.pid}-${Date.now()}`;
  const controller = new AbortController();
  const { sink } = collector();
  // A filter with a child that ignores SIGTERM and keeps neither pipe: only the group's SIGKILL ends it.
  const script = `trap '' TERM; sh -c 'trap "" TERM; exec sleep 300' ${marker} </dev/null >/dev/null 2>&1 & cat`;
  const endless = new Readable({ read() {} });
  endless.push(Buffer.alloc(1024));
  const filtering = pipeThroughProgram(endless, sink, { command: 'sh', args: ['-c', script, marker], signal: controller.signal });
  // Started once pgrep sees it (polled, not timed).
  for (let i = 0; i < 100 && run('pgrep', ['-f', marker]).status !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(run('pgrep', ['-f', marker]).status, 0, 'the filter runs');
  controller.abort(new Error('stop the test filter'));
  await assert.rejects(filtering, /stop the test filter/);
  assert.equal(run('pgrep', ['-f', marker]).stdout, '', 'nothing of the filter is left');
});

test('an output that fails (ENOSPC) is the error, not the SIGPIPE the program then dies of', async () => {
  let written = 0;
  const full = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      written += chunk.length;
      if (written > 1 << 20) callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      else callback();
    },
  });
  // Random bytes do not compress: gzip's output passes 1 MiB well before its input ends.
  const filtering = pipeThroughProgram(Readable.from([randomBytes(16 << 20)]), full, { command: 'gzip', args: ['-c', '-1'] });
  await assert.rejects(filtering, (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, 'ENOSPC', String(error));
    return true;
  });
});
