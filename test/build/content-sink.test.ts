// scripts/content-size.sh against boxsmith's listener (src/build/content-sink.ts), both real, on
// the build host over a folder instead of a guest's filesystems: the counts are those of real
// `tar | bgzip -l 6 | wc -c` (the box's gzip compressor); a stranger's connection is not taken for the tar; no tar is said so.
// The virtio channel's QEMU is a stand-in (no VM here): a FIFO as the guest's port, its bytes
// carried to the Unix socket as QEMU carries a virtio-serial port's.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openContentSink } from '../../src/build/content-sink.ts';
import { boxCompressor } from '../../src/store/box-packager.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'boxsmith-content-'));
after(() => rmSync(root, { recursive: true, force: true }));
const script = path.resolve('scripts/content-size.sh');
const files = path.resolve('src');

function runScript(manifestDir: string, environment: Record<string, string>) {
  return spawnSync('bash', [script], {
    env: { ...process.env, BOXSMITH_MANIFEST_DIR: manifestDir, BOXSMITH_CONTENT_PATHS: files, ...environment },
    encoding: 'utf8',
  });
}

const fields = (file: string) => new Map(readFileSync(file, 'utf8').trim().split('\n').map((line) => line.split('\t') as [string, string]));
const shell = (command: string) => Number(execFileSync('bash', ['-o', 'pipefail', '-c', command], { encoding: 'utf8' }).trim());

/** The guest's tar_bytes and the listener's counts are those of the real `tar | wc -c` and `tar | bgzip -l 6 | wc -c` of the files. */
function assertCountsOfTar(content: Map<string, string>, received: { tarBytes: number; compressedBytes: number }): void {
  const tarBytes = shell(`tar -cf - --one-file-system --numeric-owner ${files} 2>/dev/null | wc -c`);
  assert.equal(Number(content.get('tar_bytes')), tarBytes);
  assert.equal(received.tarBytes, tarBytes);
  assert.equal(received.compressedBytes, shell(`tar -cf - --one-file-system --numeric-owner ${files} 2>/dev/null | bgzip -c -l 6 | wc -c`));
}

describe('content-size.sh and the build host listener', () => {
  it('the tar reaches the listener whole and is compressed as the box is (bgzip -l 6): counts equal tar | wc -c and tar | bgzip -l 6 | wc -c', async () => {
    const sink = await openContentSink({ channel: { kind: 'tcp', guestHost: '127.0.0.1' }, compressor: boxCompressor('gzip') });
    // A stranger first: a wrong token is dropped and the listener waits on.
    await new Promise<void>((resolve) => {
      const stranger = connect(sink.port!, '127.0.0.1', () => stranger.end('not-the-token\nrubbish'));
      stranger.on('close', () => resolve());
    });
    const out = path.join(root, 'host');
    // Not spawnSync: the listener is in this process.
    const child = spawn('bash', [script], {
      env: { ...process.env, BOXSMITH_MANIFEST_DIR: out, BOXSMITH_CONTENT_PATHS: files, BOXSMITH_CONTENT_SINK: sink.guestAddress },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    assert.equal(await new Promise((resolve) => child.once('close', resolve)), 0);
    const received = await sink.finished();
    sink.close();
    const content = fields(path.join(out, 'content.tsv'));
    assertCountsOfTar(content, received);
    assert.ok(Number(content.get('used_bytes')) > 0);
    assert.equal(content.get('sent_to'), `127.0.0.1:${sink.port}`);
  });

  it('without a listener the guest compresses the tar itself with the command it is given (xz -1 here)', () => {
    const out = path.join(root, 'guest');
    const result = runScript(out, { BOXSMITH_CONTENT_COMPRESSOR: 'xz -1' });
    assert.equal(result.status, 0, result.stderr);
    const content = fields(path.join(out, 'content.tsv'));
    assert.equal(content.get('compressor'), 'xz -1');
    assert.equal(Number(content.get('tar_compressed_bytes')), shell(`tar -cf - --one-file-system --numeric-owner ${files} 2>/dev/null | xz -1 | wc -c`));
  });

  it('a guest without the compressor fails in one line naming it, and writes no content.tsv', () => {
    const out = path.join(root, 'missing');
    const result = runScript(out, { BOXSMITH_CONTENT_COMPRESSOR: 'no-such-compressor -6' });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /^content-size\.sh: no-such-compressor is not installed in the guest$/m);
    assert.equal(spawnSync('test', ['-e', path.join(out, 'content.tsv')]).status, 1);
  });

  it('a listener no tar came to says so in one line once the guest is done', async () => {
    const sink = await openContentSink({ channel: { kind: 'tcp', guestHost: '10.0.2.2' }, compressor: { kind: 'zlib', level: 6 } });
    assert.match(sink.guestAddress, /^10\.0\.2\.2:\d+:[0-9a-f]{32}$/);
    await assert.rejects(sink.finished(), /^ContentSinkError: no tar of the guest's files came to 127\.0\.0\.1:\d+ \(scripts\/content-size\.sh\)$/);
  });

  it('with a stand-in for QEMU: through a virtio-serial port (a FIFO here) and the Unix socket QEMU connected to at its start, the counts equal tar | wc -c and tar | bgzip -l 6 | wc -c', async () => {
    const dir = mkdtempSync(path.join(root, 'virtio-'));
    const socketPath = path.join(dir, 'content.sock');
    const sink = await openContentSink({ channel: { kind: 'virtio', socketPath, guestPort: 'boxsmith.content' }, compressor: boxCompressor('gzip') });
    assert.equal(sink.guestAddress, 'virtio:boxsmith.content');
    // QEMU connects when it starts, long before the guest writes; a second connection is not its.
    const qemu = connect(socketPath);
    await new Promise<void>((resolve) => qemu.once('connect', () => resolve()));
    const second = connect(socketPath);
    await new Promise<void>((resolve) => second.once('error', () => resolve()).once('close', () => resolve()));
    const ports = path.join(dir, 'ports');
    mkdirSync(ports);
    execFileSync('mkfifo', [path.join(ports, 'boxsmith.content')]);
    const carried = new Promise<void>((resolve, reject) => {
      const port = createReadStream(path.join(ports, 'boxsmith.content'));
      port.on('error', reject).pipe(qemu, { end: false });
      // QEMU closes the socket only when it exits: after the guest is done.
      port.once('end', () => qemu.end(() => resolve()));
    });
    const out = path.join(dir, 'manifest');
    const child = spawn('bash', [script], {
      env: { ...process.env, BOXSMITH_MANIFEST_DIR: out, BOXSMITH_CONTENT_PATHS: files, BOXSMITH_CONTENT_SINK: sink.guestAddress, BOXSMITH_VIRTIO_PORTS: ports },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    assert.equal(await new Promise((resolve) => child.once('close', resolve)), 0);
    await carried;
    const received = await sink.finished();
    sink.close();
    const content = fields(path.join(out, 'content.tsv'));
    assertCountsOfTar(content, received);
    assert.equal(content.get('sent_to'), path.join(ports, 'boxsmith.content'));
  });

  it('with a stand-in for QEMU: connected, but the guest sent nothing before QEMU exited: one line naming the socket and the guest\'s port', async () => {
    const socketPath = path.join(mkdtempSync(path.join(root, 'virtio-')), 'content.sock');
    const sink = await openContentSink({ channel: { kind: 'virtio', socketPath, guestPort: 'boxsmith.content' }, compressor: { kind: 'zlib', level: 6 } });
    const qemu = connect(socketPath);
    await new Promise<void>((resolve) => qemu.once('connect', () => resolve()));
    await new Promise<void>((resolve) => qemu.end(() => resolve()));
    await assert.rejects(
      sink.finished(),
      (error: Error) => error.message === `no tar of the guest's files came to ${socketPath} (the guest's /dev/virtio-ports/boxsmith.content) (scripts/content-size.sh)`,
    );
  });

  it('a guest whose virtio-serial port is missing fails in one line naming it, and writes no content.tsv', () => {
    const out = path.join(root, 'no-port');
    const result = runScript(out, { BOXSMITH_CONTENT_SINK: 'virtio:boxsmith.content', BOXSMITH_VIRTIO_PORTS: path.join(root, 'no-such-ports') });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /^content-size\.sh: no virtio-serial port \S+\/no-such-ports\/boxsmith\.content$/m);
    assert.equal(spawnSync('test', ['-e', path.join(out, 'content.tsv')]).status, 1);
  });
});
