// The providers and stages boxsmith knows, apart from the schema so that the command line can
// check names without loading it.

export const PROVIDERS = ['virtualbox', 'vmware', 'qemu'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** How boxsmith compresses the boxes it packages (src/store/box-packager.ts), every provider's; gzip by default. */
export const BOX_COMPRESSIONS = ['gzip', 'zstd', 'xz'] as const;
export type BoxCompression = (typeof BOX_COMPRESSIONS)[number];

export const STAGES = ['render', 'inputs', 'build', 'package', 'record', 'smoke', 'publish', 'run'] as const;
export type Stage = (typeof STAGES)[number];
