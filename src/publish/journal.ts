// Which boxes have been uploaded to which registry and verified there, kept beside the box as
// `<provider>.uploads.json`. The registries' APIs say whether a provider record exists and which
// checksum it carries, not whether its file finished uploading; this journal does, so a resumed
// publish uploads only what did not get through before.
import { existsSync, readFileSync } from 'node:fs';
import { boxFiles } from '../store/box-store.ts';
import { writeFileAtomic } from './files.ts';

export interface VerifiedUpload {
  /** `vagrant-cloud https://vagrantcloud.com phusion/ubuntu-14.04-amd64`: registry, API and box. */
  destination: string;
  version: string;
  architecture: string;
  sha256: string;
  verified_at: string;
}

interface JournalFile {
  uploads: VerifiedUpload[];
}

function journalPath(boxDir: string, provider: string): string {
  return boxFiles(boxDir, provider).uploadJournal;
}

function read(boxDir: string, provider: string): JournalFile {
  const file = journalPath(boxDir, provider);
  if (!existsSync(file)) return { uploads: [] };
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<JournalFile>;
    return { uploads: Array.isArray(data.uploads) ? data.uploads : [] };
  } catch {
    // An unreadable journal only costs a repeated upload.
    return { uploads: [] };
  }
}

export function hasVerifiedUpload(boxDir: string, provider: string, entry: Omit<VerifiedUpload, 'verified_at'>): boolean {
  return read(boxDir, provider).uploads.some(
    (upload) => upload.destination === entry.destination && upload.version === entry.version && upload.architecture === entry.architecture && upload.sha256 === entry.sha256,
  );
}

export async function recordVerifiedUpload(boxDir: string, provider: string, entry: Omit<VerifiedUpload, 'verified_at'>): Promise<void> {
  const journal = read(boxDir, provider);
  journal.uploads = journal.uploads.filter(
    (upload) => !(upload.destination === entry.destination && upload.version === entry.version && upload.architecture === entry.architecture),
  );
  journal.uploads.push({ ...entry, verified_at: new Date().toISOString() });
  await writeFileAtomic(journalPath(boxDir, provider), `${JSON.stringify(journal, null, 2)}\n`);
}
