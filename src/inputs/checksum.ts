// Checksums as definitions pin them (`sha256:<hex>`) and as releases publish them (SHA256SUMS,
// MD5SUMS, BSD-style CHECKSUM files), and hashing files with node:crypto.
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

export const CHECKSUM_ALGORITHMS = ['sha256', 'sha512', 'sha1', 'md5'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** Hex digits of a digest; the four lengths differ, so a bare digest names its algorithm. */
const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { sha256: 64, sha512: 128, sha1: 40, md5: 32 };

export interface Checksum {
  algorithm: ChecksumAlgorithm;
  /** Lower-case hex digest. */
  hex: string;
}

/** A checksum published next to a release does not list the file asked for, or lists it twice. */
export class ChecksumFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChecksumFileError';
  }
}

function isAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}

/** `sha256:<hex>` (as pinned in a definition) as algorithm and digest. */
export function parseChecksum(text: string): Checksum {
  const [algorithm = '', hex = ''] = text.trim().split(':', 2);
  if (!isAlgorithm(algorithm) || !/^[0-9a-fA-F]+$/.test(hex) || hex.length !== HEX_LENGTH[algorithm]) {
    throw new Error(
      `invalid checksum "${text}": expected <algorithm>:<hex digest> with algorithm ${CHECKSUM_ALGORITHMS.join(', ')}`,
    );
  }
  return { algorithm, hex: hex.toLowerCase() };
}

export function formatChecksum(checksum: Checksum): string {
  return `${checksum.algorithm}:${checksum.hex}`;
}

function algorithmOfDigest(hex: string): ChecksumAlgorithm | undefined {
  return CHECKSUM_ALGORITHMS.find((algorithm) => HEX_LENGTH[algorithm] === hex.length);
}

// GNU coreutils (sha256sum): `<hex>  <name>` in text mode, `<hex> *<name>` in binary mode.
const GNU_LINE = /^([0-9a-fA-F]+) [ *]?(.+)$/;
// BSD and `sha256sum --tag` / openssl: `SHA256 (<name>) = <hex>`; OpenSSL 3 writes `SHA2-256(<name>)= <hex>`.
const BSD_LINE = /^(SHA2-256|SHA2-512|SHA256|SHA512|SHA1|MD5) ?\((.+)\) ?= ?([0-9a-fA-F]+)$/i;

/**
 * The checksum a release's checksum file (SHA256SUMS and kin) gives for `fileName`, as
 * `<algorithm>:<hex>`. Lines that are not checksum lines (comments, a PGP signature's armour) are
 * skipped. Throws ChecksumFileError when the file is not listed, or listed with two digests.
 */
export function parseChecksumFile(text: string, fileName: string, source = 'the checksum file'): string {
  const found = new Set<string>();
  const listed: string[] = [];
  for (const rawLine of text.split('\n')) {
    const entry = parseChecksumLine(rawLine.replace(/\r$/, '').trim());
    if (!entry) continue;
    const name = entry.name.replace(/^\.\//, '');
    listed.push(name);
    if (name === fileName) found.add(formatChecksum(entry.checksum));
  }
  if (found.size > 1) {
    throw new ChecksumFileError(`${source} lists ${fileName} with different checksums: ${[...found].join(', ')}`);
  }
  const [checksum] = found;
  if (checksum === undefined) {
    const shown = listed.length > 8 ? `${listed.slice(0, 8).join(', ')}, …` : listed.join(', ');
    throw new ChecksumFileError(
      `${fileName} is not listed in ${source}` + (listed.length ? ` (it lists ${shown})` : ' (it has no checksum lines)'),
    );
  }
  return checksum;
}

function parseChecksumLine(line: string): { name: string; checksum: Checksum } | undefined {
  const bsd = BSD_LINE.exec(line);
  if (bsd) {
    const algorithm = bsd[1]!.toLowerCase().replace('sha2-', 'sha');
    const hex = bsd[3]!.toLowerCase();
    return isAlgorithm(algorithm) && HEX_LENGTH[algorithm] === hex.length
      ? { name: bsd[2]!, checksum: { algorithm, hex } }
      : undefined;
  }
  const gnu = GNU_LINE.exec(line);
  if (gnu) {
    const hex = gnu[1]!.toLowerCase();
    const algorithm = algorithmOfDigest(hex);
    return algorithm ? { name: gnu[2]!, checksum: { algorithm, hex } } : undefined;
  }
  return undefined;
}

const HASH_CHUNK_BYTES = 1 << 20;

/** Feeds a whole open file into `hash`; returns its size. Stops with the signal's reason when aborted. */
export async function hashOpenFile(handle: FileHandle, hash: Hash, signal?: AbortSignal): Promise<number> {
  const buffer = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  let size = 0;
  for (;;) {
    signal?.throwIfAborted();
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
    if (bytesRead === 0) return size;
    hash.update(buffer.subarray(0, bytesRead));
    size += bytesRead;
  }
}

export async function hashFile(file: string, algorithm: ChecksumAlgorithm, signal?: AbortSignal): Promise<{ hex: string; size: number }> {
  const hash = createHash(algorithm);
  const handle = await open(file, 'r');
  try {
    const size = await hashOpenFile(handle, hash, signal);
    return { hex: hash.digest('hex'), size };
  } finally {
    await handle.close();
  }
}
