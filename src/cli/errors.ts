// The one way boxsmith ends in an error. A failure the user can act on (a wrong command line, a
// wrong definition, a host that lacks something) is a few lines `boxsmith: <message>` and exit 1
// or 2. Anything else is a bug in boxsmith: one line saying so, the details in a file, exit 70.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DefinitionError, UnknownBoxError } from '../definitions/errors.ts';
import { EnvironmentError } from '../environment.ts';
import { HostSetupError, StageError } from '../exec/errors.ts';
import { FolderOwnershipError } from '../files/owned-folder.ts';
import { DurationParseError, TimeoutOverrideError } from '../exec/timeouts.ts';
import { ChecksumFileError } from '../inputs/checksum.ts';
import { IsoChecksumMismatchError, IsoUnavailableError, PinnedChecksumMismatchError } from '../inputs/errors.ts';
import { ApiResponseError, PublishError, PublishUsageError } from '../publish/errors.ts';
import { redactorFor } from '../publish/secrets.ts';
import { BoxStoreError } from '../store/box-store.ts';

/** The command line is wrong. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose --help says how to use it, when known. */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** sysexits.h EX_SOFTWARE: an internal software error. */
export const INTERNAL_ERROR_EXIT = 70;

/** Expected failures and their exit code: 2 for what the user wrote wrong, 1 for the rest. */
function expectedExitCode(error: unknown): 1 | 2 | null {
  if (error instanceof UsageError || error instanceof PublishUsageError || error instanceof DefinitionError || error instanceof UnknownBoxError) return 2;
  if (error instanceof DurationParseError || error instanceof TimeoutOverrideError || error instanceof FolderOwnershipError) return 2;
  if (
    error instanceof EnvironmentError ||
    error instanceof HostSetupError ||
    error instanceof PublishError ||
    error instanceof ApiResponseError ||
    error instanceof StageError ||
    error instanceof IsoUnavailableError ||
    error instanceof IsoChecksumMismatchError ||
    error instanceof PinnedChecksumMismatchError ||
    error instanceof ChecksumFileError ||
    error instanceof BoxStoreError
  ) {
    return 1;
  }
  // A system call's failure (no space left, permission denied): the host's to fix, and its message names the path.
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code) && 'syscall' in error) return 1;
  return null;
}

/** Where the details of an internal error go: the logs folder, or the temporary folder when that cannot be written. */
function writeDetails(text: string, logsDir: string | undefined): string {
  const name = `boxsmith-internal-error-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${process.pid}.txt`;
  for (const dir of [logsDir, tmpdir()]) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, text, { flag: 'wx', mode: 0o600 });
      return file;
    } catch {
      // Not writable: the next place.
    }
  }
  return '(nowhere: neither the logs folder nor the temporary folder is writable)';
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause === undefined ? '' : `\ncaused by: ${describe(error.cause)}`;
  return `${error.stack ?? `${error.name}: ${error.message}`}${cause}`;
}

/** Prints the error the one way and returns the exit code. Messages and details never hold a secret. */
export async function reportError(error: unknown, argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const redactor = redactorFor(process.env);
  const expected = expectedExitCode(error);
  if (expected !== null) {
    const message = redactor.redact((error as Error).message);
    const command = error instanceof UsageError ? error.command : undefined;
    console.error(`boxsmith: ${message}${error instanceof UsageError ? `\n(boxsmith ${command ? `${command} ` : ''}--help says how to use it)` : ''}`);
    return expected;
  }
  const details = [
    `boxsmith internal error, ${new Date().toISOString()}`,
    `command line: boxsmith ${argv.join(' ')}`,
    `node ${process.version} on ${process.platform}/${process.arch}, working directory ${process.cwd()}`,
    '',
    describe(error),
    '',
  ].join('\n');
  // Loaded only now: the command line's checks run without the modules of the work.
  const { outputDirectories } = await import('../run-settings.ts');
  const file = writeDetails(redactor.redact(details), outputDirectories().logsDir);
  const message = error instanceof Error ? error.message : String(error);
  console.error(`boxsmith: internal error: ${redactor.redact(message.split('\n')[0]!)} (details written to ${file})`);
  return INTERNAL_ERROR_EXIT;
}

/** An error thrown where no caller catches it (a timer, an event handler) ends boxsmith the same one way. */
export function installProcessErrorHandlers(): void {
  const fatal = async (error: unknown) => {
    process.exitCode = await reportError(error);
    // The run's cleanups may be what is stuck; the watchdog (src/exec/watchdog.ts) ends what they leave.
    process.exit();
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}
