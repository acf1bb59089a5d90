// The packager's gzip without a compressor program (src/store/parallel-gzip.ts): whole and in order
// at and around its piece boundaries, one member per piece that GNU gzip and node both read back,
// the same bytes with one worker or four, and an error upstream failing the pipeline.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { PIECE_BYTES, parallelGzip } from '../../src/store/parallel-gzip.ts';

/** `input` through parallelGzip, fed in `chunk`-byte writes. */
async function compress(input: Buffer, chunk: number, workers?: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks = function* () {
    for (let at = 0; at < input.length; at += chunk) yield input.subarray(at, at + chunk);
  };
  await pipeline(
    Readable.from(chunks()),
    parallelGzip(6, workers),
    new Writable({
      write(part: Buffer, _encoding, callback) {
        parts.push(part);
        callback();
      },
    }),
  );
  return Buffer.concat(parts);
}

/** Each member's start (gzip's magic and deflate method, FLG 0 as node writes it). */
const memberCount = (gz: Buffer) => {
  let count = 0;
  for (let at = gz.indexOf(Buffer.from([0x1f, 0x8b, 8, 0])); at !== -1; at = gz.indexOf(Buffer.from([0x1f, 0x8b, 8, 0]), at + 1)) count++;
  return count;
};

// Text, where a piece out of order or lost would show; random would make members' bytes unlikely to hold a false magic.
const text = (bytes: number) => Buffer.from(Array.from({ length: Math.ceil(bytes / 18) }, (_, i) => `line ${String(i).padStart(12, '0')}\n`).join('')).subarray(0, bytes);

for (const size of [0, 1, PIECE_BYTES - 1, PIECE_BYTES, PIECE_BYTES + 1, 3 * PIECE_BYTES + 5]) {
  test(`${size} bytes in 64 KiB writes: gunzip gives them back, in order; ${Math.max(1, Math.ceil(size / PIECE_BYTES))} member(s)`, async () => {
    const input = text(size);
    assert.equal(input.length, size);
    const gz = await compress(input, 64 << 10);
    assert.ok(gunzipSync(gz).equals(input), 'node gunzips it whole');
    assert.ok(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 << 20 }).equals(input), 'GNU gzip reads it whole');
    assert.equal(memberCount(gz), Math.max(1, Math.ceil(size / PIECE_BYTES)));
  });
}

test('one write larger than several pieces, with one worker and with four: the same bytes', async () => {
  const input = Buffer.concat([text(2 * PIECE_BYTES), randomBytes(PIECE_BYTES), text(PIECE_BYTES / 2)]);
  const one = await compress(input, input.length, 1);
  const four = await compress(input, input.length, 4);
  assert.ok(one.equals(four), 'the members do not depend on how many deflate at once');
  assert.ok(gunzipSync(four).equals(input));
  assert.equal(memberCount(four) >= 4, true);
});

test('an error in the stream before it reaches parallelGzip fails the pipeline, and nothing is left pending', async () => {
  const failing = new Readable({
    read() {
      this.push(text(PIECE_BYTES + 10));
      this.destroy(new Error('disk read failed'));
    },
  });
  await assert.rejects(pipeline(failing, parallelGzip(6), new Writable({ write: (_part, _encoding, callback) => callback() })), /disk read failed/);
});
