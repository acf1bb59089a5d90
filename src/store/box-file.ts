// What is inside a .box file, read in one streaming pass: its SHA-256 and size from the bytes as
// read, and from the same bytes (decompressed when gzip-, zstd- or xz-compressed) the tar's entries, checked to be a
// Vagrant box for one provider (publish's and the tests' reader; boxsmith's own boxes are hashed as
// they are written). A box Packer made has metadata.json last, so the whole box is read either way;
// reading it once more for the digest would double the work on boxes of several GB.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { displayPath } from '../definitions/errors.ts';
import type { BoxCompression } from '../definitions/names.ts';
import { FilterProgramError, lastLine, pipeThroughProgram } from '../exec/filter-program.ts';
import { BoxStoreError } from './box-store.ts';

/** A box is not what it should be: one line naming the file. */
export class BoxFileError extends BoxStoreError {
  constructor(message: string) {
    super(message);
    this.name = 'BoxFileError';
  }
}

export interface BoxEntry {
  /** As in the tar, without a leading `./`. */
  path: string;
  size: number;
  /** node-tar's name of the entry type: File, Directory, SymbolicLink... */
  type: string;
}

export interface BoxMetadata {
  provider: string;
  [key: string]: unknown;
}

export interface BoxInspection {
  /** Lower-case hex, of the file as read. */
  sha256: string;
  /** Bytes read: the file's size. */
  size: number;
  compression: Compression;
  metadata: BoxMetadata;
  entries: BoxEntry[];
}

/** Beyond this, a metadata.json or box.ovf is not a box's. */
const MAX_DESCRIPTOR_BYTES = 1 << 20;
const DESCRIPTORS = new Set(['metadata.json', 'box.ovf']);
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

type Compression = BoxCompression | 'none';
/** Compressions read through their own program (on all its cores), told by their first bytes. */
const BY_PROGRAM: Array<['zstd' | 'xz', Buffer]> = [
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
];
/** Told by their first bytes: a box may use it one day but boxsmith does not read it yet. */
const NOT_YET: Array<[string, Buffer]> = [['bzip2', Buffer.from('BZh')]];
const GZIP = Buffer.from([0x1f, 0x8b]);
const MAGIC_BYTES = 6;

/**
 * Reads `file` once: its digest, its entries, and whether it is a Vagrant box for
 * `expectedProvider` (Vagrant's name: libvirt, virtualbox, vmware_desktop) with that provider's
 * files. Throws BoxFileError, one line naming the file, when it is not.
 */
export async function inspectBox(file: string, expectedProvider: string, options: { signal?: AbortSignal } = {}): Promise<BoxInspection> {
  const name = displayPath(file);
  const hash = createHash('sha256');
  let size = 0;
  const input = createReadStream(file, { highWaterMark: 1 << 20, ...(options.signal ? { signal: options.signal } : {}) });
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const read = async (): Promise<Buffer | undefined> => {
    const next = await chunks.next();
    if (next.done) return undefined;
    hash.update(next.value);
    size += next.value.length;
    return next.value;
  };

  // The compression, by the first bytes (a pipe may deliver fewer at a time).
  let head = Buffer.alloc(0);
  while (head.length < MAGIC_BYTES) {
    const next = await read();
    if (!next) break;
    head = Buffer.concat([head, next]);
  }
  const notYet = NOT_YET.find(([, magic]) => head.subarray(0, magic.length).equals(magic));
  if (notYet || head.length === 0) input.destroy();
  if (notYet) throw new BoxFileError(`${name} is ${notYet[0]}-compressed: boxsmith reads gzip-, zstd- and xz-compressed and plain tar boxes, not ${notYet[0]} yet`);
  if (head.length === 0) throw new BoxFileError(`${name} is empty: it is not a Vagrant box`);
  const byProgram = BY_PROGRAM.find(([, magic]) => head.subarray(0, magic.length).equals(magic))?.[0];
  const compression: Compression = byProgram ?? (head.subarray(0, GZIP.length).equals(GZIP) ? 'gzip' : 'none');

  const entries: BoxEntry[] = [];
  const descriptors = new Map<string, string>();
  const tar = new TarSink((entry) => {
    const entryPath = entry.path.replace(/^(\.\/)+/, '');
    entries.push({ path: entryPath, size: entry.size, type: entry.type });
    if (DESCRIPTORS.has(entryPath) && FILE_TYPES.has(entry.type) && entry.size <= MAX_DESCRIPTOR_BYTES) {
      const parts: Buffer[] = [];
      entry.on('data', (part: Buffer) => parts.push(part));
      entry.on('end', () => descriptors.set(entryPath, Buffer.concat(parts).toString('utf8')));
    } else {
      entry.resume();
    }
  });
  const bytes = Readable.from(
    (async function* () {
      yield head;
      for (let chunk = await read(); chunk; chunk = await read()) yield chunk;
    })(),
    { objectMode: false },
  );
  try {
    if (compression === 'gzip') await pipeline(bytes, createGunzip(), tar);
    else if (byProgram) await throughProgram(byProgram, bytes, tar, name, options.signal);
    else await pipeline(bytes, tar);
  } catch (error) {
    input.destroy();
    throw readFailure(error, name, compression);
  }

  const metadata = checkMetadata(name, descriptors.get('metadata.json'), entries, expectedProvider);
  checkProviderFiles(name, metadata, entries, descriptors.get('box.ovf'));
  return { sha256: hash.digest('hex'), size, compression, metadata, entries };
}

/** `bytes` decompressed by `zstd -dc` / `xz -dc` into `tar`; a damaged stream is one line naming the file. */
async function throughProgram(program: 'zstd' | 'xz', bytes: Readable, tar: Writable, name: string, signal?: AbortSignal): Promise<void> {
  try {
    await pipeThroughProgram(bytes, tar, { command: program, args: ['-dc', '-q', ...(program === 'xz' ? ['-T0'] : [])], ...(signal ? { signal } : {}) });
  } catch (error) {
    if (!(error instanceof FilterProgramError)) throw error;
    const { ending } = error;
    if ('startError' in ending) throw new BoxFileError(`${name} is ${program}-compressed and reading it needs the ${program} program (${ending.startError.message})`);
    throw new BoxFileError(`${name} is not a whole ${program} stream (${lastLine(ending.stderr) || `exit ${ending.exitCode}`}): it is damaged or was cut short`);
  }
}

/** node-tar's Parser (strict: a damaged header is an error, not a warning) as a Node stream. */
class TarSink extends Writable {
  private readonly parser: Parser;
  private failure: Error | undefined;

  constructor(onEntry: (entry: ReadEntry) => void) {
    super();
    // Decompression is the stream's (zlib's, off the main thread); node-tar sees plain tar.
    this.parser = new Parser({ strict: true, zstd: false, brotli: false, onReadEntry: onEntry });
    this.parser.on('error', (error: Error) => {
      this.failure ??= error;
      this.destroy(error);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.parser.write(chunk)) callback();
    else this.parser.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.parser.end(() => callback(this.failure ?? null));
  }
}

function readFailure(error: unknown, name: string, compression: Compression): unknown {
  const failure = error as NodeJS.ErrnoException & { tarCode?: string };
  if (typeof failure.code === 'string' && failure.code.startsWith('Z_')) {
    return new BoxFileError(`${name} is not a whole gzip stream (${failure.message}): it is damaged or was cut short`);
  }
  if (failure.tarCode || failure.code?.startsWith('TAR_')) {
    const message = failure.message.replace(/^TAR_[A-Z_]+: /, '');
    const what = compression !== 'none' ? `what it ${compression === 'gzip' ? 'gunzips' : `${compression}-decompresses`} to is not a whole tar archive` : 'it is neither gzip-compressed nor a whole tar archive';
    return new BoxFileError(`${name} is not a Vagrant box: ${what} (${message})`);
  }
  return error;
}

function checkMetadata(name: string, text: string | undefined, entries: BoxEntry[], expectedProvider: string): BoxMetadata {
  const entry = entries.find((e) => e.path === 'metadata.json');
  if (!entry) throw new BoxFileError(`${name} is not a Vagrant box: no metadata.json`);
  if (text === undefined) throw new BoxFileError(`${name} is not a Vagrant box: its metadata.json is not a file of at most ${MAX_DESCRIPTOR_BYTES} bytes`);
  let metadata: unknown;
  try {
    metadata = JSON.parse(text);
  } catch (error) {
    throw new BoxFileError(`${name} is not a Vagrant box: its metadata.json is not JSON (${(error as Error).message})`);
  }
  const provider = (metadata as { provider?: unknown } | null)?.provider;
  if (typeof provider !== 'string') throw new BoxFileError(`${name} is not a Vagrant box: its metadata.json names no provider`);
  if (provider !== expectedProvider) throw new BoxFileError(`${name} is a box for ${provider}, not ${expectedProvider}`);
  return metadata as BoxMetadata;
}

/** The files Vagrant's provider needs from the box: the disk(s) and, for VirtualBox, the machine. */
function checkProviderFiles(name: string, metadata: BoxMetadata, entries: BoxEntry[], ovf: string | undefined): void {
  const files = new Set(entries.filter((e) => FILE_TYPES.has(e.type)).map((e) => e.path));
  const lacking = (needed: string[]) => needed.filter((file) => !files.has(file));
  const fail = (what: string) => new BoxFileError(`${name} is not a ${metadata.provider} box: ${what}`);
  switch (metadata.provider) {
    case 'libvirt': {
      // vagrant-libvirt's format v2 lists its disks; v1 (Packer's vagrant post-processor) has box.img.
      const disks = Array.isArray(metadata.disks) ? metadata.disks.map((disk) => String((disk as { path?: unknown })?.path ?? '')) : ['box.img'];
      const missing = lacking(disks);
      if (missing.length) throw fail(`no ${missing.join(', ')}`);
      return;
    }
    case 'virtualbox': {
      if (ovf === undefined) throw fail('no box.ovf');
      // The files the machine description refers to (<File ovf:href="...">): its disks.
      const referenced = [...ovf.matchAll(/<(?:\w+:)?File\b[^>]*?\b(?:\w+:)?href="([^"]+)"/g)].map((m) => path.posix.normalize(m[1]!));
      const missing = lacking(referenced);
      if (missing.length) throw fail(`box.ovf names ${missing.join(', ')}, which it lacks`);
      if (!referenced.length && ![...files].some((file) => file.endsWith('.vmdk'))) throw fail('box.ovf names no disk and there is no .vmdk');
      return;
    }
    case 'vmware_desktop':
      if (![...files].some((file) => file.endsWith('.vmx'))) throw fail('no .vmx');
      return;
    default:
      return;
  }
}
