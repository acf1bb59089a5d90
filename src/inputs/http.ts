// The HTTP client for build inputs: got with timeouts that catch a stalled mirror, got's retries
// with back-off, and failures described in words a person can act on.
import got, { HTTPError, RequestError, TimeoutError, type Got } from 'got';

export interface NetworkSettings {
  /** DNS lookup, TCP connect and TLS handshake, each. */
  connectTimeoutMs: number;
  /** From sending a request to receiving the response headers. */
  responseTimeoutMs: number;
  /** No bytes at all for this long and the connection counts as stalled. */
  idleTimeoutMs: number;
  /** got's retries of one URL (a download resumes where it stopped) before moving to the next. */
  retries: number;
  /** Upper bound of got's exponential back-off between retries (1 s, 2 s, 4 s, …). */
  maxRetryDelayMs: number;
}

export const DEFAULT_NETWORK_SETTINGS: Readonly<NetworkSettings> = {
  connectTimeoutMs: 30_000,
  responseTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  retries: 3,
  maxRetryDelayMs: 30_000,
};

// got's defaults minus ECONNREFUSED, ENOTFOUND and ENETUNREACH: a mirror that refuses connections or
// a name that does not resolve will not recover within seconds, and the next mirror (or, offline,
// the error telling the user how to supply the file) is the better next step.
const RETRIED_ERROR_CODES = ['ETIMEDOUT', 'ECONNRESET', 'EADDRINUSE', 'EPIPE', 'EAI_AGAIN'];

export function httpClient(settings: NetworkSettings): Got {
  return got.extend({
    headers: { 'user-agent': 'boxsmith' },
    // Byte ranges and checksums are about the file as stored: never ask for a compressed encoding.
    decompress: false,
    timeout: {
      lookup: settings.connectTimeoutMs,
      connect: settings.connectTimeoutMs,
      secureConnect: settings.connectTimeoutMs,
      response: settings.responseTimeoutMs,
      // socket.setTimeout: fires after this long without a byte in either direction.
      socket: settings.idleTimeoutMs,
    },
    retry: {
      limit: settings.retries,
      backoffLimit: settings.maxRetryDelayMs,
      errorCodes: RETRIED_ERROR_CODES,
    },
  });
}

/** Something a mirror served that is not the file (an HTML page, a wrong byte range). */
export class MirrorResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MirrorResponseError';
  }
}

/** Whether an error is the mirror's fault (try the next one) rather than a local one (disk full). */
export function isMirrorFailure(error: unknown): boolean {
  return error instanceof RequestError || error instanceof MirrorResponseError;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

const ERROR_CODE_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  ENETUNREACH: 'network unreachable',
  EHOSTUNREACH: 'host unreachable',
  EPIPE: 'connection closed while sending',
  ERR_HTTP_CONTENT_LENGTH_MISMATCH: 'body shorter than its Content-Length',
};

/** One line saying why a request failed, e.g. `HTTP 503 Service Unavailable (after 3 retries)`. */
export function describeFailure(error: unknown, settings: NetworkSettings): string {
  if (!(error instanceof RequestError)) return error instanceof Error ? error.message : String(error);
  let what: string;
  if (error instanceof HTTPError) {
    what = `HTTP ${error.response.statusCode} ${error.response.statusMessage ?? ''}`.trimEnd();
  } else if (error instanceof TimeoutError) {
    what =
      error.event === 'socket'
        ? `stalled: no data for ${formatMs(settings.idleTimeoutMs)}`
        : error.event === 'response'
          ? `no response within ${formatMs(settings.responseTimeoutMs)}`
          : `could not connect within ${formatMs(settings.connectTimeoutMs)} (${error.event})`;
  } else {
    const words = ERROR_CODE_WORDS[error.code];
    what = words ? `${words} (${error.code})` : error.code ? `${error.message} (${error.code})` : error.message;
  }
  const retries = error.request?.retryCount ?? 0;
  return retries > 0 ? `${what} (after ${retries} ${retries === 1 ? 'retry' : 'retries'})` : what;
}
