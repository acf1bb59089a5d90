// Debian's rclone, run through the supervisor (own process group, time limit, output in the run's
// publish log, the run's watchdog ending it should boxsmith die), as the one way boxsmith reads and
// writes files on a remote. Each method is one rclone command; what rclone said on failure comes
// back as one line.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CommandRunner } from '../exec/command-runner.ts';
import { findExecutable, toolPath } from '../exec/tools.ts';
import type { Watchdog } from '../exec/watchdog.ts';
import { PublishError } from './errors.ts';
import { remoteSpec, type RcloneRemote } from './rclone-remote.ts';
import type { Redactor } from './secrets.ts';

/** rclone's exit codes for "directory not found" and "file not found". */
const NOT_FOUND_EXIT_CODES = [3, 4];
/** A listing, a hash, a move or a small file: these answer in seconds on any backend. */
const SMALL_COMMAND_TIMEOUT_MS = 5 * 60_000;
/** Uploading one box: at least this long, more for a large one (at 1 MiB/s). */
const MIN_UPLOAD_TIMEOUT_MS = 30 * 60_000;

/**
 * boxsmith reads SHA-256 only, which Debian's rclone 1.60 cannot ask an SFTP server's shell for:
 * without these, rclone probes the server's shell and its md5sum and sha1sum over extra SSH
 * sessions on every command (a third of a second each, here), and saves what it found into the
 * user's rclone config, which boxsmith must leave as it was.
 */
const SFTP_WITHOUT_SHELL = { RCLONE_SFTP_SHELL_TYPE: 'none', RCLONE_SFTP_MD5SUM_COMMAND: 'none', RCLONE_SFTP_SHA1SUM_COMMAND: 'none' };

/** Backends that have no SHA-256 of their own in Debian's rclone 1.60 (SFTP's needs a shell, which boxsmith turns off). */
const BACKENDS_WITHOUT_SHA256 = ['sftp', 'webdav', 'ftp', 'http'];

export interface RemoteEntry {
  /** Relative to the listed folder, `/`-separated. */
  path: string;
  isDir: boolean;
  size: number;
}

export interface RcloneOptions {
  remote: RcloneRemote;
  /** The run's log folder: rclone's output goes to `<logDir>/<stage>.log`. */
  logDir: string;
  stage: string;
  redactor: Redactor;
  signal?: AbortSignal;
  watchdog?: Watchdog;
  env?: NodeJS.ProcessEnv;
}

/** How a file's SHA-256 was read on the remote. */
export type HashMethod = 'remote' | 'download';

export class Rclone {
  private readonly runner: CommandRunner;
  private readonly program: string;
  private hashMethod: HashMethod | undefined;

  constructor(private readonly options: RcloneOptions) {
    this.program = toolPath('rclone', options.env);
    if (findExecutable(this.program, options.env) === null) {
      throw new PublishError(`${this.program} is not installed: rclone targets need Debian's rclone (setup/install.sh installs it)`);
    }
    // A connection string names its backend: those without SHA-256 in Debian's rclone are hashed by download from the start.
    if (BACKENDS_WITHOUT_SHA256.includes(options.remote.backend ?? '')) this.hashMethod = 'download';
    this.runner = new CommandRunner({
      stage: options.stage,
      logDir: options.logDir,
      signal: options.signal ?? new AbortController().signal,
      // Each command has its own limit; the step as a whole has none beyond them.
      deadline: Number.MAX_SAFE_INTEGER,
      ...(options.watchdog ? { watchdog: options.watchdog } : {}),
      graceMs: 5000,
    });
  }

  /** `REMOTE:PATH/relative`, as shown in messages (credentials blanked). */
  shown(relative = ''): string {
    const { shown, path: folder } = this.options.remote;
    return this.options.redactor.redact(relative ? `${shown}${folder ? '/' : ''}${relative}` : shown);
  }

  /** One rclone command; a failure is a PublishError with rclone's own last error line. */
  private async run(args: string[], what: string, { timeoutMs = SMALL_COMMAND_TIMEOUT_MS, notFound = false } = {}): Promise<{ stdout: string; found: boolean }> {
    const result = await this.attempt(args, timeoutMs);
    if (result.exitCode === 0) return { stdout: result.stdout, found: true };
    if (notFound && result.exitCode !== null && NOT_FOUND_EXIT_CODES.includes(result.exitCode)) return { stdout: '', found: false };
    throw new PublishError(this.options.redactor.redact(`rclone could not ${what}: ${result.said} (rclone's output: ${this.runner.logFile})`));
  }

  private async attempt(args: string[], timeoutMs: number): Promise<{ exitCode: number | null; stdout: string; said: string }> {
    const lines: string[] = [];
    const result = await this.runner.run(this.program, args, {
      env: { ...SFTP_WITHOUT_SHELL, ...this.options.remote.env },
      capture: true,
      allowFailure: true,
      timeoutMs,
      onLine: (line) => lines.push(line),
    });
    // rclone's last ERROR line says what went wrong; its NOTICE lines (no config file, ...) do not.
    const said = (lines.filter((line) => /ERROR|Failed/.test(line)).pop() ?? lines.pop() ?? `exit code ${result.exitCode}`)
      .replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '')
      .trim();
    return { exitCode: result.exitCode, stdout: result.stdout, said };
  }

  /** The files and folders below `relative`, or undefined when it does not exist. */
  async list(relative: string, { recursive = false } = {}): Promise<RemoteEntry[] | undefined> {
    const { stdout, found } = await this.run(['lsjson', ...(recursive ? ['--recursive'] : []), this.spec(relative)], `list ${this.shown(relative)}`, { notFound: true });
    if (!found) return undefined;
    const entries = JSON.parse(stdout || '[]') as Array<{ Path: string; IsDir: boolean; Size: number }>;
    return entries.map((entry) => ({ path: entry.Path, isDir: entry.IsDir, size: entry.Size }));
  }

  /**
   * The text of a small file, or undefined when it is not there (rclone: "directory not found",
   * since it takes a path that is no file for a folder). Only for paths of files.
   */
  async read(relative: string): Promise<string | undefined> {
    const { stdout, found } = await this.run(['cat', this.spec(relative)], `read ${this.shown(relative)}`, { notFound: true });
    return found ? stdout : undefined;
  }

  /**
   * The SHA-256 of a file on the remote, or undefined when it is not there: the backend's own
   * hash where it has one (S3, local), else rclone downloads the file and hashes it (SFTP in
   * Debian's rclone 1.60, WebDAV).
   */
  async sha256(relative: string): Promise<string | undefined> {
    const spec = this.spec(relative);
    if (this.hashMethod !== 'download') {
      const result = await this.attempt(['hashsum', 'sha256', spec], SMALL_COMMAND_TIMEOUT_MS);
      if (result.exitCode !== null && NOT_FOUND_EXIT_CODES.includes(result.exitCode)) return undefined;
      // `<hex>  <name>`; a backend without SHA-256 says "hash type not supported".
      const hex = result.exitCode === 0 ? /^([0-9a-f]{64})\s/m.exec(result.stdout)?.[1] : undefined;
      if (hex) {
        this.hashMethod = 'remote';
        return hex;
      }
      if (!/not supported|unsupported/i.test(result.said) && result.exitCode !== 0) {
        throw new PublishError(this.options.redactor.redact(`rclone could not hash ${this.shown(relative)}: ${result.said} (rclone's output: ${this.runner.logFile})`));
      }
    }
    const { stdout, found } = await this.run(['hashsum', 'sha256', '--download', spec], `download and hash ${this.shown(relative)}`, { timeoutMs: MIN_UPLOAD_TIMEOUT_MS, notFound: true });
    if (!found) return undefined;
    const hex = /^([0-9a-f]{64})\s/m.exec(stdout)?.[1];
    if (!hex) throw new PublishError(`rclone gave no SHA-256 for ${this.shown(relative)}, neither from the backend nor by downloading it`);
    this.hashMethod = 'download';
    return hex;
  }

  /** How the last hash was read: the backend's own (`remote`) or by downloading the file (`download`). */
  get hashMethodUsed(): HashMethod | undefined {
    return this.hashMethod;
  }

  /**
   * Uploads a local file to `relative`; rclone skips it when a file of the same size and hash is
   * already there (`--checksum`), which is how a publish resumes after an interrupted one.
   */
  async upload(localFile: string, relative: string, size: number): Promise<void> {
    const timeoutMs = Math.max(MIN_UPLOAD_TIMEOUT_MS, Math.ceil(size / 1048576) * 1000);
    await this.run(['copyto', '--checksum', localFile, this.spec(relative)], `upload ${localFile} to ${this.shown(relative)}`, { timeoutMs });
  }

  /** Renames on the remote: a server-side move where the backend has one, else copy and delete. */
  async move(from: string, to: string): Promise<void> {
    await this.run(['moveto', this.spec(from), this.spec(to)], `move ${this.shown(from)} to ${this.shown(to)}`);
  }

  /** Writes a small file whole: uploaded under a temporary name beside it, then moved into place. */
  async writeText(relative: string, text: string): Promise<void> {
    const slash = relative.lastIndexOf('/');
    await this.writeTexts(relative.slice(0, Math.max(0, slash)), [{ name: relative.slice(slash + 1), text }]);
  }

  /** Writes small files of one folder, each whole: all uploaded under temporary names in one rclone command, then each moved into place. */
  async writeTexts(folder: string, files: Array<{ name: string; text: string }>): Promise<void> {
    const local = await mkdtemp(path.join(tmpdir(), 'boxsmith-rclone-'));
    const inFolder = (name: string) => (folder ? `${folder}/${name}` : name);
    try {
      for (const file of files) await writeFile(path.join(local, temporaryPath(file.name)), file.text);
      const shown = files.map((file) => this.shown(inFolder(temporaryPath(file.name)))).join(', ');
      await this.run(['copy', '--checksum', local, this.spec(folder)], `upload ${shown}`, { timeoutMs: SMALL_COMMAND_TIMEOUT_MS });
      for (const file of files) await this.move(inFolder(temporaryPath(file.name)), inFolder(file.name));
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  }

  async deleteFile(relative: string): Promise<void> {
    await this.run(['deletefile', this.spec(relative)], `delete ${this.shown(relative)}`);
  }

  /** Deletes a folder and everything in it. */
  async purge(relative: string): Promise<void> {
    await this.run(['purge', this.spec(relative)], `delete ${this.shown(relative)}`, { notFound: true });
  }

  get logFile(): string {
    return this.runner.logFile;
  }

  private spec(relative: string): string {
    return remoteSpec(this.options.remote, relative);
  }
}

/** The name a file is uploaded under before it is moved into place: hidden, and boxsmith's by its suffix. */
export function temporaryPath(relative: string): string {
  const slash = relative.lastIndexOf('/');
  return `${relative.slice(0, slash + 1)}.${relative.slice(slash + 1)}.boxsmith-upload`;
}
