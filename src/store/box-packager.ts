// boxsmith's own box packager: the provider's files from Packer's output directory, as a tar with
// metadata.json and the Vagrantfile first, compressed on all cores, hashed and counted as it is
// written (the sha256 and size are of the OUTPUT, from the same pass: nothing is read twice), into
// a temporary name in the destination folder linked to the final name when whole (never over a
// file already there). A failure or abort removes only the temporary files this wrote.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { createWriteStream, linkSync, lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { create as createTar } from 'tar';
import { COMPRESSION_LEVELS, compressionLevelProblem } from '../definitions/compression-level.ts';
import { displayPath } from '../definitions/errors.ts';
import { pipeThroughProgram } from '../exec/filter-program.ts';
import { findExecutable } from '../exec/tools.ts';
import { BoxStoreError } from './box-store.ts';
import { parallelGzip } from './parallel-gzip.ts';

import type { BoxCompression } from '../definitions/names.ts';

export { BOX_COMPRESSIONS, type BoxCompression } from '../definitions/names.ts';
export { COMPRESSION_LEVELS } from '../definitions/compression-level.ts';

/** One file of the box: its name in the tar and where it is now (read in place, never copied). */
export interface BoxSourceFile {
  name: string;
  source: string;
}

export interface BoxLayout {
  metadata: Record<string, unknown> & { provider: string };
  /** The box's Vagrantfile (the rendered one Packer used as vagrantfile_template), if any. */
  vagrantfile?: string;
  /** The Vagrantfile's text, where the layout composes it (VirtualBox's base MAC); instead of `vagrantfile`. */
  vagrantfileText?: string;
  /** The disk(s) and the provider's other files, in the order they go into the tar. */
  files: BoxSourceFile[];
}

export interface PackagedBox {
  file: string;
  /** Lower-case hex, of the box as written. */
  sha256: string;
  size: number;
  compression: BoxCompression;
  /** The compressor's level it was written at. */
  level: number;
  /** The program that compressed it (bgzip, pigz, zstd, xz), or zlib: a level means different bytes in each. */
  compressor: string;
  /** Entry names in tar order. */
  entries: string[];
}

/**
 * The libvirt layout as Packer's vagrant post-processor writes it (box format v1, which
 * vagrant-libvirt reads as well as v2): hashicorp/packer-plugin-vagrant
 * post-processor/vagrant/libvirt.go copies the disk as box.img and writes metadata
 * {"provider":"libvirt","format":<diskType>,"virtual_size":<disk size in GiB, rounded up>}.
 */
export function libvirtLayout(disk: string, virtualSizeBytes: number, vagrantfile?: string): BoxLayout {
  const gib = 1024 ** 3;
  return {
    metadata: { provider: 'libvirt', format: 'qcow2', virtual_size: Math.ceil(virtualSizeBytes / gib) },
    ...(vagrantfile ? { vagrantfile } : {}),
    files: [{ name: 'box.img', source: disk }],
  };
}

/** How a box is compressed: a program from stdin to stdout, on all cores, or node's zlib in this process on all cores (gzip without bgzip or pigz: parallel-gzip.ts). */
export type BoxCompressor = { kind: 'program'; command: string; args: string[]; level: number } | { kind: 'zlib'; level: number };

/**
 * The compressor for `compression` at `level` (default: the compressor's own, COMPRESSION_LEVELS).
 * Throws for a level `compression` does not take, or a missing zstd or xz program.
 *
 * gzip is written by htslib's bgzip where installed (Debian's tabix), else pigz, else node's zlib
 * on all cores (parallel-gzip.ts).
 * bgzip deflates with libdeflate, which at the same level is about twice as fast as zlib per core
 * and compresses as well (the debian-12 disk at level 6: 8.5 s and 334.2 MB on 2 cores, against
 * pigz's 15.9 s and 331.4 MB); that is what lets the packager beat Packer's pgzip. Its output is
 * standard gzip in many members (64 KiB of input each), which gzip's format allows (RFC 1952 2.2)
 * and every reader of boxes takes: Vagrant's bsdtar (libarchive's gzip filter reads the next
 * member's header after a member's trailer, gzip_filter_read), GNU gzip and tar, node's zlib.
 * Both it and pigz write the same bytes whatever the thread count.
 */
export function boxCompressor(compression: BoxCompression, level?: number, env: NodeJS.ProcessEnv = process.env): BoxCompressor {
  const chosen = level ?? COMPRESSION_LEVELS[compression].default;
  const problem = compressionLevelProblem(compression, chosen);
  if (problem) throw new Error(`compression level ${problem}`);
  switch (compression) {
    case 'gzip': {
      const bgzip = findExecutable('bgzip', env);
      if (bgzip) return { kind: 'program', command: bgzip, args: ['-c', '-l', String(chosen), '-@', String(availableParallelism())], level: chosen };
      const pigz = findExecutable('pigz', env);
      return pigz ? { kind: 'program', command: pigz, args: ['-c', `-${chosen}`], level: chosen } : { kind: 'zlib', level: chosen };
    }
    case 'zstd': {
      const zstd = findExecutable('zstd', env);
      if (!zstd) throw new Error('zstd compression needs the zstd program (apt-get install zstd)');
      return { kind: 'program', command: zstd, args: ['-c', '-q', '-T0', `-${chosen}`], level: chosen };
    }
    case 'xz': {
      const xz = findExecutable('xz', env);
      if (!xz) throw new Error('xz compression needs the xz program (apt-get install xz-utils)');
      return { kind: 'program', command: xz, args: ['-c', '-q', '-T0', `-${chosen}`], level: chosen };
    }
  }
}

/** The compressor's program name (bgzip, pigz, zstd, xz), or zlib. */
function compressorName(compressor: BoxCompressor): string {
  return compressor.kind === 'zlib' ? 'zlib' : path.basename(compressor.command);
}

/**
 * Compresses `input` into `output` with `compressor`: node's zlib in this process, or the program
 * in its own process group (pipeThroughProgram). Resolves when `output` has had the whole stream.
 */
export function compressStream(
  input: NodeJS.ReadableStream | AsyncIterable<Buffer>,
  output: Writable,
  compressor: BoxCompressor,
  options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<void> {
  const signal = options.signal ? { signal: options.signal } : {};
  if (compressor.kind === 'zlib') return pipeline(input, parallelGzip(compressor.level), output, signal);
  return pipeThroughProgram(input, output, { command: compressor.command, args: compressor.args, ...(options.env ? { env: options.env } : {}), ...signal });
}

/** Packages `layout` into `destination` (its folder must exist). */
export async function packageBox(
  layout: BoxLayout,
  destination: string,
  options: { compression?: BoxCompression; level?: number; signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {},
): Promise<PackagedBox> {
  const compression = options.compression ?? 'gzip';
  const env = options.env ?? process.env;
  // Chosen first: a wrong level or a missing compressor is said before anything is written.
  const compressor = boxCompressor(compression, options.level, env);
  const folder = path.dirname(destination);
  // Refused before any work; the link at the end refuses one that appears meanwhile.
  if (pathExists(destination)) throw existingDestination(destination);
  // The tar's names, as links to the files where they are (node-tar follows them: no copy).
  const names = mkdtempSync(path.join(folder, `.${path.basename(destination)}.entries-`));
  const temporary = path.join(folder, `.${path.basename(destination)}.${process.pid}.partial`);
  let wroteTemporary = false;
  let output: ReturnType<typeof createWriteStream> | undefined;
  try {
    const entries = ['metadata.json'];
    writeFileSync(path.join(names, 'metadata.json'), `${JSON.stringify(layout.metadata)}\n`);
    if (layout.vagrantfileText !== undefined) {
      writeFileSync(path.join(names, 'Vagrantfile'), layout.vagrantfileText);
      entries.push('Vagrantfile');
    } else if (layout.vagrantfile) {
      symlinkSync(path.resolve(layout.vagrantfile), path.join(names, 'Vagrantfile'));
      entries.push('Vagrantfile');
    }
    for (const file of layout.files) {
      symlinkSync(path.resolve(file.source), path.join(names, file.name));
      entries.push(file.name);
    }

    const hash = createHash('sha256');
    let size = 0;
    const counting = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const tar = createTar({ cwd: names, follow: true, portable: true, noMtime: false }, entries);
    output = createWriteStream(temporary, { flags: 'wx' });
    wroteTemporary = true;
    const signal = options.signal ? { signal: options.signal } : {};
    const [compressed, written] = await Promise.allSettled([
      compressStream(tar, counting, compressor, { env, ...signal }),
      pipeline(counting, output, signal),
    ]);
    // A failed write (a full disk) is the cause: a compressor that fails ends its output early,
    // which the write takes as a normal end.
    for (const outcome of [written, compressed]) if (outcome.status === 'rejected') throw outcome.reason;
    // link(2), not rename(2): a file that appeared at the name meanwhile is refused (EEXIST), not replaced.
    try {
      linkSync(temporary, destination);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw existingDestination(destination);
      throw error;
    }
    rmSync(temporary);
    wroteTemporary = false;
    return { file: destination, sha256: hash.digest('hex'), size, compression, level: compressor.level, compressor: compressorName(compressor), entries };
  } finally {
    if (wroteTemporary) {
      // The file opens asynchronously: removed only once closed, or an early abort would leave it.
      const stream = output!;
      if (!stream.closed) await new Promise<void>((resolve) => stream.destroy().once('close', () => resolve()));
      rmSync(temporary, { force: true });
    }
    rmSync(names, { recursive: true, force: true });
  }
}

/** Whether anything (a dangling symlink included) is at `file`. */
function pathExists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function existingDestination(destination: string): BoxStoreError {
  return new BoxStoreError(`${displayPath(destination)} already exists: boxsmith packages a box only into a name nothing has`);
}
