// Errors of the ISO cache. Each message says what happened and what the user can do about it.
import path from 'node:path';

/** Quotes a path for a shell command line when it needs it. */
function shellWord(text: string): string {
  return /^[\w./~:+@%=-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

export interface MirrorFailure {
  url: string;
  /** e.g. `connection refused (ECONNREFUSED)`, `HTTP 404 Not Found`, `stalled: no data for 60 s`. */
  reason: string;
}

/**
 * No URL of the ISO delivered it. The message lists each URL with its failure and the exact
 * commands that put the ISO into the cache by hand, which is how offline hosts get it.
 */
export class IsoUnavailableError extends Error {
  constructor(
    readonly file: string,
    readonly checksum: string,
    /** Where a copy of the ISO placed by hand is picked up (and verified) by the next build. */
    readonly cachePath: string,
    readonly failures: MirrorFailure[],
    noun = 'ISO',
  ) {
    const tried = failures.length
      ? `from any of its URLs:\n${failures.map((failure) => `  ${failure.url}: ${failure.reason}`).join('\n')}`
      : '(the definition lists no URLs)';
    super(
      `could not download ${file} ${tried}\n` +
        `To supply it by hand (e.g. on a host without internet access), copy the ${noun} into the cache, ` +
        `where it is verified against ${checksum} before it is used:\n` +
        `  mkdir -p ${shellWord(path.dirname(cachePath))}\n` +
        `  cp ${shellWord(file)} ${shellWord(cachePath)}`,
    );
    this.name = 'IsoUnavailableError';
  }
}

/** A downloaded ISO is not the one the definition pins. The download has been deleted. */
export class IsoChecksumMismatchError extends Error {
  constructor(
    readonly file: string,
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
    checksumUrl?: string,
  ) {
    super(
      `checksum mismatch for ${file} downloaded from ${url}: expected ${expected}, got ${actual}. ` +
        `The download was deleted. ` +
        (checksumUrl
          ? `If the release was re-published, compare the pinned checksum with ${checksumUrl}.`
          : 'If the release was re-published, the definition pins an outdated checksum.'),
    );
    this.name = 'IsoChecksumMismatchError';
  }
}

/** The checksum pinned in a definition differs from the one the release publishes. */
export class PinnedChecksumMismatchError extends Error {
  constructor(
    readonly file: string,
    readonly pinned: string,
    readonly published: string,
    readonly checksumUrl: string,
  ) {
    super(
      `the pinned checksum of ${file} (${pinned}) differs from the one published at ${checksumUrl} (${published}). ` +
        `Update the definition if the release was re-published; otherwise find out why the published file changed.`,
    );
    this.name = 'PinnedChecksumMismatchError';
  }
}
