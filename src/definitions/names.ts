// The providers and stages boxsmith knows, apart from the schema so that the command line can
// check names without loading it.

export const PROVIDERS = ['virtualbox', 'vmware', 'qemu'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** How boxsmith compresses the boxes it packages (src/store/box-packager.ts), every provider's; gzip by default. */
export const BOX_COMPRESSIONS = ['gzip', 'zstd', 'xz'] as const;
export type BoxCompression = (typeof BOX_COMPRESSIONS)[number];

/** Each compressor's level when none is chosen: gzip's and xz's own default, zstd's. */
export const DEFAULT_COMPRESSION_LEVELS: Record<BoxCompression, number> = { gzip: 6, zstd: 3, xz: 6 };

/** The command a guest compresses a tar with as the box is compressed (one core: the guest has its own). */
export function guestCompressorCommand(compression: BoxCompression, level = DEFAULT_COMPRESSION_LEVELS[compression]): string {
  return `${compression} -${level}`;
}

export const STAGES = ['render', 'inputs', 'build', 'package', 'record', 'smoke', 'publish', 'run'] as const;
export type Stage = (typeof STAGES)[number];
