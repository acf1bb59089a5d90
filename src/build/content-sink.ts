// The build host's end of scripts/content-size.sh: a listener that takes one tar of the guest's
// files, counts it and compresses it as the box is compressed, keeping only the counts. The guest
// does only the tar, the host the compression (minutes under emulation, seconds here). Two ways in:
// - QEMU: a Unix socket in the build's own 0700 folder, which QEMU connects to at its start and
//   passes a virtio-serial port's bytes to (measured under TCG: the guest's 947 MB tar in 31 s, as
//   fast as the guest reads its disk, against 73 s through the NAT);
// - VirtualBox: a loopback TCP port the NAT reaches as 10.0.2.2; any local program can connect
//   there, so the guest sends this build's token line first and strangers are dropped.
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { PassThrough, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressStream, type BoxCompressor } from '../store/box-packager.ts';


export interface ReceivedContent {
  /** The tar's bytes as they arrived (the guest's `tar --totals` says how many it sent). */
  tarBytes: number;
  compressedBytes: number;
}

/** How the guest's tar reaches the listener. */
export type ContentChannel =
  | { kind: 'tcp'; /** The host's loopback as the guest reaches it (10.0.2.2). */ guestHost: string }
  | { kind: 'virtio'; /** The Unix socket QEMU connects to. */ socketPath: string; /** The guest's /dev/virtio-ports/<name>. */ guestPort: string };

export interface ContentSink {
  /** The guest's BOXSMITH_CONTENT_SINK: host:port:token, or virtio:<port name>. */
  guestAddress: string;
  /** The TCP port (tcp channel only). */
  port?: number;
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
  channel: ContentChannel;
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
  /** The virtio channel's one connection (QEMU's), before any of the tar came through it. */
  let connected = false;
  const sockets = new Set<Socket>();
  // finished() waiting for connections to be taken or closed.
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((resolve) => resolve());

  const { channel } = options;
  const take = (socket: Socket, first: Buffer) => {
    taken = true;
    wake();
    server.close();
    socket.pause();
    measure(socket, first).then(settle.resolve, settle.reject);
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      wake();
    });
    if (taken || connected) return void socket.destroy();
    if (channel.kind === 'virtio') {
      // QEMU's connection, made when it starts: the tar comes through it minutes later, once.
      connected = true;
      server.close();
      socket.once('data', (first: Buffer) => take(socket, first));
      socket.on('error', () => undefined);
      return;
    }
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
      take(socket, head.subarray(newline + 1));
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
      await Promise.all([arriving, compressStream(source, discard, options.compressor, { ...(options.env ? { env: options.env } : {}), ...signal })]);
    } catch (error) {
      throw new ContentSinkError(`the guest's tar (scripts/content-size.sh) on ${where}: ${(error as Error).message}`);
    }
    return { tarBytes, compressedBytes };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (channel.kind === 'virtio') server.listen(channel.socketPath, () => resolve());
    else server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = channel.kind === 'tcp' ? (server.address() as { port: number }).port : undefined;
  const where = channel.kind === 'tcp' ? `127.0.0.1:${port}` : `${channel.socketPath} (the guest's /dev/virtio-ports/${channel.guestPort})`;
  const close = () => {
    server.close();
    for (const socket of sockets) socket.destroy();
    settle.reject(new ContentSinkError(`no tar of the guest's files came to ${where} (scripts/content-size.sh)`));
  };
  options.signal?.addEventListener('abort', close, { once: true });
  const finished = async () => {
    // A connection whose token line is still on its way is waited for; then, with no tar although
    // the guest is done, nothing more will come.
    while (!taken && sockets.size > 0) await new Promise<void>((resolve) => waiters.push(resolve));
    if (!taken) close();
    return received;
  };
  const guestAddress = channel.kind === 'tcp' ? `${channel.guestHost}:${port}:${token}` : `virtio:${channel.guestPort}`;
  return { guestAddress, ...(port !== undefined ? { port } : {}), finished, close };
}
