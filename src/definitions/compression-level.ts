// The levels each box compression takes, and its default, apart from the schema so that the command
// line and the packager can check and choose a level without loading it.
import type { BoxCompression } from './names.ts';

export interface CompressionLevels {
  min: number;
  max: number;
  /** The level when a definition and the command line say none: the compressor's own default. */
  default: number;
}

export const COMPRESSION_LEVELS: Record<BoxCompression, CompressionLevels> = {
  // bgzip, pigz and zlib take 0 too, but that is a tar in gzip framing, not compressed.
  gzip: { min: 1, max: 9, default: 6 },
  // 20-22 need zstd's --ultra and a window too large for some readers.
  zstd: { min: 1, max: 19, default: 3 },
  xz: { min: 0, max: 9, default: 6 },
};

/** What is wrong with `level` for `compression` ("12 is not a gzip level (1-9)"), or undefined. */
export function compressionLevelProblem(compression: BoxCompression, level: number): string | undefined {
  const { min, max } = COMPRESSION_LEVELS[compression];
  return Number.isInteger(level) && level >= min && level <= max ? undefined : `${level} is not ${compression === 'xz' ? 'an' : 'a'} ${compression} level (${min}-${max})`;
}

/**
 * The command a guest compresses a tar with as the box is compressed (one core: the guest has its
 * own). For gzip it is zlib's gzip where the host's box is bgzip's: at one level the two differ by
 * about 1% (bgzip's members cost a little ratio, libdeflate wins a little back).
 */
export function guestCompressorCommand(compression: BoxCompression, level = COMPRESSION_LEVELS[compression].default): string {
  return `${compression} -${level}`;
}
