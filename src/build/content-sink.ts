// The build host's end of scripts/content-size.sh: a listener on loopback that takes one tar of the
// guest's files (after a line with this build's token), counts it and compresses it as the box is
// compressed, keeping only the counts. QEMU's and VirtualBox's NAT reach it as 10.0.2.2; the guest
// does only the tar, the host the compression (minutes under emulation, seconds here).
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { PassThrough, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pipeThroughProgram } from '../exec/filter-program.ts';
import type { BoxCompressor } from '../store/box-packager.ts';


export interface ReceivedContent {
  /** The tar's bytes as they arrived (the guest's `tar --totals` says how many it sent). */
  tarBytes: number;
  compressedBytes: number;
}

export interface ContentSink {
  /** host:port:token, the guest's BOXSMITH_CONTENT_SINK. */
  guestAddress: string;
  port: number;
  /** Once the guest is done: the counts when its tar has been read to its end and compressed, else why not. */
  finished(): Promise<ReceivedContent>;
  close(): void;
}

/** A token line longer than this is not the guest's. */
const TOKEN_LINE_MAX = 128;

/** The one line every failure here is: where the tar came from and what went wrong. */
export class ContentSinkError extends Error {
  override name = 'ContentSinkError';
}

export async function openContentSink(options: {
  /** The host's loopback as the guest reaches it. */
  guestHost: string;
  compressor: BoxCompressor;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}): Promise<ContentSink> {
  const token = randomBytes(16).toString('hex');
  let settle!: { resolve: (value: ReceivedContent) => void; reject: (error: unknown) => void };
  const received = new Promise<ReceivedContent>((resolve, reject) => (settle = { resolve, reject }));
  // Awaited only when the build gets that far; a failure before is not an unhandled rejection.
  received.catch(() => undefined);
  let taken = false;
  const sockets = new Set<Socket>();
  // finished() waiting for connections to be taken or closed.
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((resolve) => resolve());

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      wake();
    });
    if (taken) return void socket.destroy();
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(0x0a);
      if (newline < 0) {
        if (head.length > TOKEN_LINE_MAX) socket.destroy();
        return;
      }
      socket.off('data', onData);
      // Another local program's connection: not this build's tar, and the listener waits on.
      if (head.subarray(0, newline).toString() !== token || taken) return void socket.destroy();
      taken = true;
      wake();
      server.close();
      socket.pause();
      measure(socket, head.subarray(newline + 1)).then(settle.resolve, settle.reject);
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
  });

  async function measure(socket: Socket, first: Buffer): Promise<ReceivedContent> {
    let tarBytes = 0;
    let compressedBytes = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        tarBytes += chunk.length;
        callback(null, chunk);
      },
    });
    counted.write(first);
    const discard = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        compressedBytes += chunk.length;
        callback();
      },
    });
    const signal = options.signal ? { signal: options.signal } : {};
    const source = new PassThrough();
    try {
      const arriving = pipeline(socket, counted, source, signal);
      if (options.compressor.kind === 'zlib') {
        await Promise.all([arriving, pipeline(source, createGzip({ level: options.compressor.level }), discard, signal)]);
      } else {
        const { command, args } = options.compressor;
        await Promise.all([arriving, pipeThroughProgram(source, discard, { command, args, ...(options.env ? { env: options.env } : {}), ...signal })]);
      }
    } catch (error) {
      throw new ContentSinkError(`the guest's tar (scripts/content-size.sh) on 127.0.0.1:${port}: ${(error as Error).message}`);
    }
    return { tarBytes, compressedBytes };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const close = () => {
    server.close();
    for (const socket of sockets) socket.destroy();
    settle.reject(new ContentSinkError(`no tar of the guest's files came to 127.0.0.1:${port} (scripts/content-size.sh)`));
  };
  options.signal?.addEventListener('abort', close, { once: true });
  const finished = async () => {
    // A connection whose token line is still on its way is waited for; then, with no tar although
    // the guest is done, nothing more will come.
    while (!taken && sockets.size > 0) await new Promise<void>((resolve) => waiters.push(resolve));
    if (!taken) close();
    return received;
  };
  return { guestAddress: `${options.guestHost}:${port}:${token}`, port, finished, close };
}
