// Downloads one URL into a `.part` file, resuming what an earlier attempt left there, and hashes the
// bytes as they are written. Whether and when to retry is got's decision (its limit, back-off and
// retryable errors); this module only makes each retry ask for the bytes still missing.
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { HTTPError, type Got, type OptionsInit, type PlainResponse, type Request } from 'got';
import { hashOpenFile, type ChecksumAlgorithm } from './checksum.ts';
import { MirrorResponseError } from './http.ts';

export interface DownloadProgress {
  url: string;
  /** Bytes of the file on disk so far, including those a resumed download started with. */
  received: number;
  /** Size of the whole file, when the server says. */
  total?: number;
  /** Bytes that were already there when this transfer started (0 for a fresh download). */
  resumedFrom: number;
}

export interface PartDownload {
  url: string;
  partPath: string;
  algorithm: ChecksumAlgorithm;
  /** Expected digest: lets a `416 Range Not Satisfiable` be recognised as "the .part is complete". */
  expectedHex: string;
  client: Got;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Called when got retries the URL after `error`, asking for the bytes from `resumeAt` on. */
  onRetry?: (error: unknown, retry: number, resumeAt: number) => void;
  progressIntervalMs: number;
}

/** The complete `.part` file, flushed to disk: its digest and size. */
export interface DownloadedPart {
  hex: string;
  size: number;
  /** Where the last response's bytes start: 0 when one response delivered the whole file. */
  resumedFrom: number;
}

/**
 * Fetches `url` into `partPath`, resuming from the bytes already there. Throws got's RequestError or
 * a MirrorResponseError for what the mirror did wrong; the `.part` is kept for a later resume.
 */
export async function downloadToPart(job: PartDownload): Promise<DownloadedPart> {
  const part = await HashedPartFile.open(job.partPath, job.algorithm, job.signal);
  try {
    const progress = new ProgressThrottle(job.url, job.onProgress, job.progressIntervalMs);
    if (new URL(job.url).protocol === 'file:') await copyLocalFile(job, part, progress);
    else await fetchHttp(job, part, progress);
    return { ...(await part.finish()), resumedFrom: progress.resumedFrom };
  } finally {
    await part.close();
  }
}

/** The `.part` file and the running hash of exactly the bytes it holds. */
class HashedPartFile {
  private hash: Hash;
  private constructor(
    private readonly handle: FileHandle,
    private readonly algorithm: ChecksumAlgorithm,
    public size: number,
  ) {
    this.hash = createHash(algorithm);
  }

  /** Opens (or creates) the file and hashes what an interrupted download left in it. */
  static async open(file: string, algorithm: ChecksumAlgorithm, signal?: AbortSignal): Promise<HashedPartFile> {
    // Not 'a': on Linux, append mode ignores the positions that truncate-and-restart relies on.
    const handle = await open(file, constants.O_RDWR | constants.O_CREAT, 0o644);
    const part = new HashedPartFile(handle, algorithm, 0);
    try {
      part.size = await hashOpenFile(handle, part.hash, signal);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return part;
  }

  async append(chunk: Buffer): Promise<void> {
    let written = 0;
    while (written < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, written, chunk.length - written, this.size + written);
      written += bytesWritten;
    }
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  async truncate(): Promise<void> {
    await this.handle.truncate(0);
    this.size = 0;
    this.hash = createHash(this.algorithm);
  }

  /** Digest of the bytes so far, without ending the hash. */
  currentHex(): string {
    return this.hash.copy().digest('hex');
  }

  async finish(): Promise<{ hex: string; size: number }> {
    await this.handle.sync();
    return { hex: this.hash.digest('hex'), size: this.size };
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Reports progress at most once an interval, plus the first and the last report of a transfer. */
class ProgressThrottle {
  private lastReportAt = Number.NEGATIVE_INFINITY;
  total: number | undefined;
  resumedFrom = 0;
  constructor(
    private readonly url: string,
    private readonly onProgress: PartDownload['onProgress'],
    private readonly intervalMs: number,
  ) {}

  report(received: number, force = false): void {
    if (!this.onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastReportAt < this.intervalMs) return;
    this.lastReportAt = now;
    const progress: DownloadProgress = { url: this.url, received, resumedFrom: this.resumedFrom };
    if (this.total !== undefined) progress.total = this.total;
    this.onProgress(progress);
  }
}

function rangeFrom(offset: number): string | undefined {
  return offset > 0 ? `bytes=${offset}-` : undefined;
}

async function fetchHttp(job: PartDownload, part: HashedPartFile, progress: ProgressThrottle): Promise<void> {
  const request = (headers: OptionsInit['headers']) => job.client.stream(job.url, { headers, signal: job.signal });
  let current = request({ range: rangeFrom(part.size) });
  let restartedAfter416 = false;
  for (;;) {
    let createRetryStream: ((options?: OptionsInit) => Request) | undefined;
    let retry: { count: number; error: unknown } | undefined;
    // Attaching this listener is what makes got retry a stream at all. got emits it, after its
    // back-off, just before the old stream closes; by then every received byte is in the .part.
    current.once('retry', (retryCount: number, error: unknown, create: (options?: OptionsInit) => Request) => {
      createRetryStream = create;
      retry = { count: retryCount, error };
    });
    try {
      await receiveBody(current, part, progress);
      return;
    } catch (error) {
      job.signal?.throwIfAborted();
      if (createRetryStream) {
        if (retry) job.onRetry?.(retry.error, retry.count, part.size);
        // The same request with got's retry count, asking only for the bytes still missing.
        current = createRetryStream({ headers: { range: rangeFrom(part.size) } });
        continue;
      }
      if (error instanceof HTTPError && error.response.statusCode === 416 && part.size > 0) {
        // Nothing at or after our offset: the .part is either the whole file (a crash between the
        // last byte and the rename) or longer than it. Its digest tells which.
        if (part.currentHex() === job.expectedHex) {
          progress.report(part.size, true);
          return;
        }
        if (restartedAfter416) throw error;
        restartedAfter416 = true;
        await part.truncate();
        current = request({});
        continue;
      }
      throw error;
    }
  }
}

/** Streams one response into the .part; decides append / restart from its status when it starts. */
async function receiveBody(request: Request, part: HashedPartFile, progress: ProgressThrottle): Promise<void> {
  let response: PlainResponse | undefined;
  request.once('response', (received: PlainResponse) => {
    response = received;
  });
  let accepted = false;
  const accept = async () => {
    if (!response) throw new MirrorResponseError('the response ended before its headers');
    await acceptResponse(response, part, progress);
    accepted = true;
    progress.report(part.size, true);
  };
  for await (const chunk of request as AsyncIterable<Buffer>) {
    if (!accepted) await accept();
    await part.append(chunk);
    progress.report(part.size);
  }
  if (!accepted) await accept();
  progress.report(part.size, true);
}

async function acceptResponse(response: PlainResponse, part: HashedPartFile, progress: ProgressThrottle): Promise<void> {
  const contentLength = numberHeader(response.headers['content-length']);
  if (response.statusCode === 206) {
    const header = response.headers['content-range'];
    const range = parseContentRange(header);
    if (!range || range.start !== part.size) {
      throw new MirrorResponseError(`asked for bytes from ${part.size}, answered with ${header ? `Content-Range: ${header}` : 'no Content-Range'}`);
    }
    progress.resumedFrom = part.size;
    progress.total = range.total ?? (contentLength !== undefined ? part.size + contentLength : undefined);
    return;
  }
  if (response.statusCode === 200) {
    // A soft 404 or a captive portal; checked before the .part is truncated, which would lose a resume.
    const contentType = response.headers['content-type'] ?? '';
    if (/^text\/html\b/i.test(contentType)) {
      throw new MirrorResponseError(`served a web page (Content-Type: ${contentType}), not the file`);
    }
    // A server that ignores Range sends the whole file: start the .part again from byte 0.
    if (part.size > 0) await part.truncate();
    progress.resumedFrom = 0;
    progress.total = contentLength;
    return;
  }
  throw new MirrorResponseError(`unexpected HTTP ${response.statusCode} ${response.statusMessage ?? ''}`.trimEnd());
}

function numberHeader(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** `bytes 100-199/1000` (total may be `*`). */
export function parseContentRange(header: string | undefined): { start: number; end: number; total?: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header?.trim() ?? '');
  if (!match) return undefined;
  const range: { start: number; end: number; total?: number } = { start: Number(match[1]), end: Number(match[2]) };
  if (match[3] !== '*') range.total = Number(match[3]);
  return range;
}

/** A `file://` mirror (the schema allows them): a local copy is cheap, so it always starts over. */
async function copyLocalFile(job: PartDownload, part: HashedPartFile, progress: ProgressThrottle): Promise<void> {
  const sourcePath = fileURLToPath(job.url);
  let source: FileHandle;
  try {
    source = await open(sourcePath, 'r');
  } catch (error) {
    throw new MirrorResponseError(`cannot read ${sourcePath}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    await part.truncate();
    progress.total = (await source.stat()).size;
    progress.report(0, true);
    for await (const chunk of source.createReadStream({ autoClose: false, signal: job.signal }) as AsyncIterable<Buffer>) {
      await part.append(chunk);
      progress.report(part.size);
    }
    progress.report(part.size, true);
  } finally {
    await source.close();
  }
}
