// The providers and stages boxsmith knows, apart from the schema so that the command line can
// check names without loading it.

export const PROVIDERS = ['virtualbox', 'vmware', 'qemu'] as const;
export type Provider = (typeof PROVIDERS)[number];

export const STAGES = ['render', 'inputs', 'build', 'package', 'record', 'smoke', 'publish', 'run'] as const;
export type Stage = (typeof STAGES)[number];
