// One URL downloaded into a `.part` file (resuming what an earlier attempt left, ./download.ts) and
// checked against the checksum it must have: what the ISO cache and `boxsmith mirror` both do.
import { rm } from 'node:fs/promises';
import type { Got } from 'got';
import { formatChecksum, type Checksum } from './checksum.ts';
import { downloadToPart, type DownloadProgress, type DownloadedPart } from './download.ts';
import { describeFailure, type NetworkSettings } from './http.ts';

export interface VerifiedDownloadJob {
  url: string;
  partPath: string;
  checksum: Checksum;
  client: Got;
  network: NetworkSettings;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  onWarning?: (message: string) => void;
  progressIntervalMs: number;
}

/** The complete `.part` with the expected digest, or the digest it had instead (the `.part` is then removed). */
export type VerifiedDownload = { verified: true; part: DownloadedPart } | { verified: false; hex: string };

/**
 * Downloads `url` into `partPath` and verifies it. A resumed download that does not verify may owe
 * the mismatch to the bytes it resumed from (a .part corrupted by a crash, or another mirror's): it
 * is fetched once more from byte 0. Throws what downloadToPart throws (the `.part` then stays for a
 * later resume).
 */
export async function downloadVerified(job: VerifiedDownloadJob): Promise<VerifiedDownload> {
  for (let restarted = false; ; restarted = true) {
    job.signal?.throwIfAborted();
    const part = await downloadToPart({
      url: job.url,
      partPath: job.partPath,
      algorithm: job.checksum.algorithm,
      expectedHex: job.checksum.hex,
      client: job.client,
      signal: job.signal,
      onProgress: job.onProgress,
      onRetry: (error, retry, resumeAt) =>
        job.onWarning?.(`${job.url}: ${describeFailure(error, job.network)}; retry ${retry} of ${job.network.retries}${resumeAt > 0 ? `, resuming from byte ${resumeAt}` : ''}`),
      progressIntervalMs: job.progressIntervalMs,
    });
    if (part.hex === job.checksum.hex) return { verified: true, part };
    await rm(job.partPath, { force: true });
    if (part.resumedFrom > 0 && !restarted) {
      job.onWarning?.(
        `${job.url}: the download resumed at byte ${part.resumedFrom} does not match ${formatChecksum(job.checksum)} ` +
          `(it is ${job.checksum.algorithm}:${part.hex}): removed, downloading it again from byte 0`,
      );
      continue;
    }
    return { verified: false, hex: part.hex };
  }
}
