import { fileURLToPath } from 'node:url';

/** The boxsmith checkout: templates/, definitions/ and the default output folders are in it. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
