// The checkout boxsmith runs from: templates/, scripts/, keys/ and definitions/ are read from it,
// and its default output folders (boxes/, build/, logs/, reports/) are below it.
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
