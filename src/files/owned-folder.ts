// The ownership rule for every folder a user can name (render --out, BOXSMITH_BOXES, _WORK, _LOGS,
// _CACHE, _REPORTS, nightly --report-dir, publish --to static:DIR): boxsmith only ever changes
// what is inside a folder it created itself or claimed while it was empty, proven by the marker
// file it writes then. Anything else is refused before a single file is written, so a typo in a
// path (or `--out .`) can never cost a user their files.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, statSync, writeSync, fsyncSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../repo-root.ts';

/** The marker boxsmith writes into every folder it owns. */
export const FOLDER_MARKER = '.boxsmith-folder';

export const FOLDER_KINDS = ['render', 'boxes', 'work', 'logs', 'cache', 'catalog', 'reports'] as const;
export type FolderKind = (typeof FOLDER_KINDS)[number];

export interface FolderMarker {
  /** What the folder holds. */
  kind: FolderKind;
  created_at: string;
  about: string;
}

/** A folder boxsmith will not write into: one line saying which, why and what to do instead. */
export class FolderOwnershipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FolderOwnershipError';
  }
}

export interface FolderRequest {
  dir: string;
  kind: FolderKind;
  /** How the user named it, put before the folder in messages: `--out`, `BOXSMITH_BOXES=`, `--to static:`. */
  namedBy: string;
  /** The project's or host's own default for this kind (REPO_ROOT/boxes, ~/.cache/boxsmith): boxsmith's by design. */
  byDesign?: boolean;
}

/** The marker's content for a folder boxsmith takes now. */
export function newMarker(kind: FolderKind, now = new Date()): string {
  const marker: FolderMarker = { kind, created_at: now.toISOString(), about: `boxsmith's ${kind} folder: boxsmith changes only what it wrote here` };
  return `${JSON.stringify(marker, null, 2)}\n`;
}

/**
 * Makes `dir` boxsmith's folder of `kind`, or refuses with a FolderOwnershipError: creates it (with
 * its marker) when missing, claims it when empty, uses it when it carries the marker of this kind.
 * `checkOnly` (dry runs) refuses the same way but writes nothing. Returns the absolute path.
 */
export function claimFolder(request: FolderRequest, { checkOnly = false }: { checkOnly?: boolean } = {}): string {
  const dir = path.resolve(request.dir);
  refuseNeverOwnable(dir, request);
  const verdict = inspect(dir, request);
  if (verdict.status === 'owned' || checkOnly) return dir;
  if (verdict.status === 'missing') mkdirSync(dir, { recursive: true });
  try {
    writeMarker(dir, request.kind);
  } catch (error) {
    // Another boxsmith claimed it first: fine if it made it a folder of this kind.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    inspect(dir, request);
  }
  return dir;
}

/**
 * For a folder boxsmith replaces whole (`render --out`): the same rule, except that `force`
 * (the user asked for the replacement) lets a non-empty folder without a marker go. Writes
 * nothing: returns the marker content the replacement must carry (the old one when there was one,
 * so rendering again gives the same bytes).
 */
export function replaceableFolder(request: FolderRequest & { force?: boolean }): string {
  const dir = path.resolve(request.dir);
  refuseNeverOwnable(dir, request);
  try {
    const verdict = inspect(dir, request);
    return verdict.status === 'owned' ? verdict.marker : newMarker(request.kind);
  } catch (error) {
    if (request.force && error instanceof ForeignContent) return newMarker(request.kind);
    throw error;
  }
}

/** Foreign files in a folder: the one refusal `--force` may override. */
class ForeignContent extends FolderOwnershipError {}

/** `adoptable`: boxsmith's without a marker yet (a default folder, a catalog tree of an earlier boxsmith). */
type Verdict = { status: 'missing' | 'empty' | 'adoptable' } | { status: 'owned'; marker: string };

/** `--out /x`, `BOXSMITH_BOXES=/x`: the folder as the user named it. */
function named(dir: string, request: FolderRequest): string {
  return /[=:]$/.test(request.namedBy) ? `${request.namedBy}${dir}` : `${request.namedBy} ${dir}`;
}

function inspect(dir: string, request: FolderRequest): Verdict {
  const what = named(dir, request);
  if (!existsSync(dir)) return { status: 'missing' };
  if (!statSync(dir).isDirectory()) throw new FolderOwnershipError(`${what} is a file, not a folder: name a new or empty folder`);
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  if (!entries.length) return { status: 'empty' };
  if (entries.some((entry) => entry.name === FOLDER_MARKER)) {
    const text = readMarker(path.join(dir, FOLDER_MARKER));
    const kind = text === undefined ? undefined : markerKind(text);
    if (kind === request.kind) return { status: 'owned', marker: text! };
    throw new FolderOwnershipError(
      kind
        ? `${what} is boxsmith's ${kind} folder, not a ${request.kind} folder: name a new or empty folder for the ${request.kind} output`
        : `${what} has a ${FOLDER_MARKER} boxsmith cannot read: name a new or empty folder`,
    );
  }
  if (request.byDesign) return { status: 'adoptable' };
  if (request.kind === 'catalog' && isBoxsmithCatalogTree(dir)) return { status: 'adoptable' };
  const shown = entries.slice(0, 3).map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.name));
  const rest = entries.length > shown.length ? `, and ${entries.length - shown.length} more` : '';
  throw new ForeignContent(
    `${what} holds files boxsmith did not write (${shown.join(', ')}${rest}): name a new or empty folder` +
      (request.kind === 'render' ? ', or add --force to replace it' : ''),
  );
}

function readMarker(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // a folder or unreadable file by that name: not a marker boxsmith wrote
  }
}

function markerKind(text: string): FolderKind | undefined {
  try {
    const { kind } = JSON.parse(text) as Partial<FolderMarker>;
    return (FOLDER_KINDS as readonly string[]).includes(kind as string) ? (kind as FolderKind) : undefined;
  } catch {
    return undefined;
  }
}

/** Folders that are never boxsmith's, whatever they hold and whatever options say. */
function refuseNeverOwnable(dir: string, request: FolderRequest): void {
  const what = named(dir, request);
  const real = realPath(dir);
  const never = `${request.kind === 'render' ? ' (not even with --force)' : ''}: name a new or empty folder`;
  if (real === path.parse(real).root) throw new FolderOwnershipError(`${what} is the root folder: boxsmith never writes into it${never}`);
  const home = realPath(homedir());
  if (real === home) throw new FolderOwnershipError(`${what} is your home folder: boxsmith never writes into it${never}`);
  if (home.startsWith(`${real}${path.sep}`)) throw new FolderOwnershipError(`${what} contains your home folder (${home}): boxsmith never writes into it${never}`);
  const project = realPath(REPO_ROOT);
  if (real === project) throw new FolderOwnershipError(`${what} is the boxsmith project itself: boxsmith never writes into it${never}`);
  if (project.startsWith(`${real}${path.sep}`)) throw new FolderOwnershipError(`${what} contains the boxsmith project (${project}): boxsmith never writes into it${never}`);
  if (existsSync(path.join(dir, '.git'))) throw new FolderOwnershipError(`${what} holds a git repository (.git): boxsmith never writes into it${never}`);
}

/** The path with symbolic links resolved, as far as it exists (the rest appended). */
function realPath(dir: string): string {
  const resolved = path.resolve(dir);
  if (existsSync(resolved)) return realpathSync(resolved);
  const parent = path.dirname(resolved);
  return parent === resolved ? resolved : path.join(realPath(parent), path.basename(resolved));
}

function writeMarker(dir: string, kind: FolderKind): void {
  // 'wx': a marker that appeared meanwhile is not overwritten.
  const fd = openSync(path.join(dir, FOLDER_MARKER), 'wx', 0o644);
  try {
    writeSync(fd, newMarker(kind));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const SEGMENT = '[A-Za-z0-9][A-Za-z0-9._-]*';
/** Left behind by an interrupted atomic write (src/atomic-files.ts temporaryName). */
const TEMPORARY = `\\.${SEGMENT}\\.tmp-\\d+-[0-9a-f]+`;
const CATALOG_TREE_FILES = [
  new RegExp(`^${SEGMENT}/(${SEGMENT}|\\.${SEGMENT}\\.lock|${TEMPORARY})$`),
  new RegExp(`^${SEGMENT}/boxes/${SEGMENT}/versions/${SEGMENT}/providers/${SEGMENT}/(${SEGMENT}\\.box(\\.sha256)?|${SEGMENT}\\.record\\.json|${TEMPORARY})$`),
];

/**
 * Whether a folder without a marker is a static catalog tree an earlier boxsmith published
 * (src/publish/static-target.ts): every file is a catalog of its own org/box, a box, its
 * checksum or its build record, a publish lock or a temporary file of an atomic write, and nothing else.
 */
function isBoxsmithCatalogTree(dir: string): boolean {
  const files: string[] = [];
  const walk = (relative: string): boolean => {
    for (const entry of readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const name = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!walk(name)) return false;
      } else if (entry.isFile()) files.push(name);
      else return false;
    }
    return true;
  };
  if (!walk('') || !files.length) return false;
  return files.every((file) => {
    if (!CATALOG_TREE_FILES.some((pattern) => pattern.test(file))) return false;
    const [org, name] = file.split('/') as [string, string];
    if (file.split('/').length !== 2 || name.startsWith('.')) return true;
    return isCatalogOf(path.join(dir, file), `${org}/${name.replace(/\.json$/, '')}`);
  });
}

function isCatalogOf(file: string, name: string): boolean {
  try {
    const catalog = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; versions?: unknown };
    return catalog.name === name && Array.isArray(catalog.versions);
  } catch {
    return false;
  }
}
