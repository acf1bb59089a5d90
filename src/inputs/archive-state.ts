// The state of the package archive a box is built against: the InRelease file of each suite its
// guest installs from (the release, its -updates and its -security suite), by date and digest. A
// new InRelease means the archive changed, so tonight's box would get newer packages: it is part of
// a nightly's input hash, of the base image's cache key and of the build record.
import { createHash } from 'node:crypto';
import type { Definition } from '../definitions/schema.ts';
import { DEFAULT_NETWORK_SETTINGS, describeFailure, httpClient, type NetworkSettings } from './http.ts';

/** One suite of the archive a box was built against (for Debian: bookworm, bookworm-updates, bookworm-security). */
export interface ArchiveSuite {
  /** The archive's URL and suite, e.g. http://deb.debian.org/debian bookworm-updates */
  suite: string;
  /** The `Date:` of its InRelease, ISO 8601. */
  date: string;
  /** sha256 of the InRelease file. */
  sha256: string;
}

/** The suites a definition's guest installs packages from: [archive URL, suite name]. */
export function archiveSuites(definition: Definition): Array<{ archive: string; suite: string }> {
  const { base } = definition;
  if (base.kind === 'debootstrap') {
    const { mirror, security_mirror: security, suite } = base.debootstrap!;
    return [
      { archive: mirror, suite },
      { archive: mirror, suite: `${suite}-updates` },
      { archive: security, suite: `${suite}-security` },
    ];
  }
  const { mirror_host: host, mirror_directory: directory } = base.installer!.preseed;
  const archive = `http://${host}${directory}`;
  const { codename } = definition.os;
  return [`${codename}`, `${codename}-updates`, `${codename}-security`].map((suite) => ({ archive, suite }));
}

/** `Date:` of an InRelease (RFC 2822 in the signed text), as ISO 8601. */
export function inReleaseDate(text: string): string {
  const line = /^Date:\s*(.+)$/m.exec(text)?.[1];
  const date = line ? new Date(line) : undefined;
  if (!date || Number.isNaN(date.getTime())) throw new Error('it has no Date: line');
  return date.toISOString();
}

/** Fetches each suite's InRelease; fails with one line naming the URL when one cannot be read. */
export async function archiveState(definition: Definition, settings: NetworkSettings = DEFAULT_NETWORK_SETTINGS): Promise<ArchiveSuite[]> {
  const client = httpClient(settings);
  return Promise.all(
    archiveSuites(definition).map(async ({ archive, suite }) => {
      const url = `${archive.replace(/\/+$/, '')}/dists/${suite}/InRelease`;
      let body: Buffer;
      try {
        body = await client.get(url).buffer();
      } catch (error) {
        throw new Error(`cannot read the archive state from ${url}: ${describeFailure(error, settings)}`);
      }
      try {
        return { suite: `${archive} ${suite}`, date: inReleaseDate(body.toString('utf8')), sha256: createHash('sha256').update(body).digest('hex') };
      } catch (error) {
        throw new Error(`${url} is not an InRelease file: ${(error as Error).message}`);
      }
    }),
  );
}
