// The HTTP side of publishing to Vagrant Cloud and HCP, through got as for build inputs
// (src/inputs/http.ts): time limits that catch a stalled connection, retries with exponential
// back-off on 5xx, 429 and connection errors, and failures described in words.
//
// What differs from downloads:
//   - API requests carry `Authorization: Bearer …`; uploads to pre-signed storage URLs never do,
//     and a redirect to another origin drops the header.
//   - POST is retried too: every create is preceded by a read and followed, on a conflict, by a
//     read again (see hosted.ts), so a create repeated after a lost answer does no harm.
//   - A streamed upload cannot be replayed by got; `uploadFile` makes one attempt and the caller
//     retries with a fresh upload URL (they expire).
//   - In a dry run nothing is sent: each request is printed (secrets redacted) and answered with
//     the response the caller says a fresh publish would get.
//   - An answer that the service or box creation is closed (HCP Vagrant is being retired) ends the
//     publish at once: it is not retried, even a 503, and no other request follows (closedAnswer).
import { createReadStream } from 'node:fs';
import got, { HTTPError, RequestError, TimeoutError, type Got, type Method } from 'got';
import { describeFailure, type NetworkSettings } from '../inputs/http.ts';
import { ApiResponseError, ServiceClosedError } from './errors.ts';
import { HCP_RETIREMENT_ISSUE } from './retirement.ts';
import { displayUrl, type Redactor } from './secrets.ts';

export interface ApiNetworkSettings extends NetworkSettings {
  /** Attempts at one upload (each with a fresh upload URL) before the provider fails. */
  uploadAttempts: number;
  /** Between upload progress lines. */
  progressIntervalMs: number;
}

export const DEFAULT_API_NETWORK_SETTINGS: Readonly<ApiNetworkSettings> = {
  connectTimeoutMs: 30_000,
  responseTimeoutMs: 120_000,
  // Storage that stops reading an upload for this long is taken as stalled.
  idleTimeoutMs: 120_000,
  retries: 5,
  maxRetryDelayMs: 60_000,
  uploadAttempts: 4,
  progressIntervalMs: 15_000,
};

// got's defaults plus ECONNREFUSED and EHOSTUNREACH: an API endpoint has no mirror to fall back
// to, and a load balancer that refuses connections during a deploy comes back within seconds.
const RETRIED_ERROR_CODES = ['ETIMEDOUT', 'ECONNRESET', 'EADDRINUSE', 'ECONNREFUSED', 'EPIPE', 'ENETUNREACH', 'EHOSTUNREACH', 'EAI_AGAIN'];
const RETRIED_STATUS_CODES = [408, 429, 500, 502, 503, 504, 521, 522, 524];
const MAX_RETRY_AFTER_MS = 300_000;

export interface ApiRequest {
  method: Extract<Method, 'GET' | 'POST' | 'PUT' | 'DELETE'>;
  url: string;
  json?: unknown;
  /** application/x-www-form-urlencoded body (OAuth token requests). */
  form?: Record<string, string>;
  /** Send the bearer token (API requests); false for the token request itself. */
  auth: boolean;
  /** What the request is for, in words, for messages: `create version 1.0.0`. */
  what: string;
  /** Statuses that are answers rather than failures, e.g. 404 for "does not exist yet". */
  accept?: number[];
  /** The answer a dry run assumes for this request (a fresh publish: nothing exists yet). */
  assume: ApiResponse;
  /** Shown after the request in a dry run, e.g. `(only if the box does not exist)`. */
  note?: string;
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

export interface ApiClientOptions {
  settings: ApiNetworkSettings;
  redactor: Redactor;
  log: (line: string) => void;
  dryRun: boolean;
  /** The bearer token for API requests; asked for each request (HCP's tokens expire). */
  bearer?: () => Promise<string>;
  signal?: AbortSignal;
}

export class ApiClient {
  readonly dryRun: boolean;
  private readonly api: Got;
  private readonly storage: Got;

  constructor(private readonly options: ApiClientOptions) {
    this.dryRun = options.dryRun;
    const { settings } = options;
    const timeout = {
      lookup: settings.connectTimeoutMs,
      connect: settings.connectTimeoutMs,
      secureConnect: settings.connectTimeoutMs,
      response: settings.responseTimeoutMs,
      socket: settings.idleTimeoutMs,
    };
    const base = got.extend({
      headers: { 'user-agent': 'boxsmith' },
      timeout,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.api = base.extend({
      headers: { accept: 'application/json' },
      responseType: 'text',
      retry: {
        limit: settings.retries,
        methods: ['GET', 'PUT', 'POST', 'DELETE'],
        statusCodes: RETRIED_STATUS_CODES,
        errorCodes: RETRIED_ERROR_CODES,
        backoffLimit: settings.maxRetryDelayMs,
        noise: Math.min(100, settings.maxRetryDelayMs),
        // A Retry-After (429, 503) is honoured up to this; a longer one ends the request.
        maxRetryAfter: MAX_RETRY_AFTER_MS,
        // A service that says it is closed stays closed: no retry.
        calculateDelay: ({ computedValue, error }) => (error instanceof HTTPError && closedAnswer(error.response.statusCode, String(error.response.body)) ? 0 : computedValue),
      },
      hooks: {
        beforeRetry: [
          (error, retryCount) => {
            const url = error.options.url ? displayUrl(String(error.options.url)) : 'the API';
            options.log(this.redact(`retrying ${error.options.method} ${url} after ${describeFailure(error, settings)} (retry ${retryCount} of ${settings.retries})`));
          },
        ],
        beforeRedirect: [
          (redirected, response) => {
            // The token is for the API's own origin only.
            const from = new URL(response.url);
            const to = new URL(String(redirected.url));
            if (from.origin !== to.origin) delete redirected.headers.authorization;
          },
        ],
      },
    });
    // Pre-signed storage URLs: no token, no redirects (a streamed body cannot follow one), no
    // retries inside got (the stream is consumed; the caller retries with a new URL).
    this.storage = base.extend({ retry: { limit: 0 }, followRedirect: false });
  }

  redact(text: string): string {
    return this.options.redactor.redact(text);
  }

  async send(request: ApiRequest): Promise<ApiResponse> {
    if (this.dryRun) {
      const body = request.form ? ` ${new URLSearchParams(request.form).toString()}` : request.json !== undefined ? ` ${JSON.stringify(request.json)}` : '';
      this.options.log(this.redact(`[dry run] ${request.method} ${displayUrl(request.url)}${body}${request.note ? `  ${request.note}` : ''}`));
      return request.assume;
    }
    const headers: Record<string, string> = {};
    if (request.auth && this.options.bearer) headers.authorization = `Bearer ${await this.options.bearer()}`;
    try {
      const response = await this.api(request.url, {
        method: request.method,
        headers,
        ...(request.json !== undefined ? { json: request.json } : {}),
        ...(request.form ? { form: request.form } : {}),
      });
      return { status: response.statusCode, body: parseBody(String(response.body)) };
    } catch (error) {
      const closed = error instanceof HTTPError ? closedAnswer(error.response.statusCode, String(error.response.body)) : undefined;
      if (closed) {
        throw new ServiceClosedError(
          this.redact(
            `${request.what}: ${request.method} ${displayUrl(request.url)}: ${describeFailure(error, this.options.settings)}${closed === true ? '' : `: ${closed}`}. ` +
              `The registry says it is closed (HashiCorp is retiring Vagrant Cloud / HCP Vagrant, ${HCP_RETIREMENT_ISSUE}); nothing more was sent. ` +
              'Publish to a catalog you host instead: --to static:DIR,base-url=URL (docs/hosting.md)',
          ),
        );
      }
      if (error instanceof HTTPError && request.accept?.includes(error.response.statusCode)) {
        return { status: error.response.statusCode, body: parseBody(String(error.response.body)) };
      }
      const status = error instanceof HTTPError ? error.response.statusCode : 0;
      const said = error instanceof HTTPError ? apiErrorText(parseBody(String(error.response.body))) : '';
      throw new ApiResponseError(
        this.redact(`${request.what}: ${request.method} ${displayUrl(request.url)}: ${describeFailure(error, this.options.settings)}${said ? `: ${said}` : ''}`),
        status,
      );
    }
  }

  /**
   * PUTs a file to a pre-signed upload URL as one streamed request with a Content-Length (storage
   * services refuse chunked uploads), reporting progress. One attempt: see isRetryableUploadFailure.
   */
  async uploadFile(url: string, file: string, size: number, label: string): Promise<void> {
    if (this.dryRun) {
      this.options.log(`[dry run] PUT <the pre-signed upload URL of the answer above> ${file} (${size} bytes, streamed, no Authorization header)`);
      return;
    }
    const { progressIntervalMs } = this.options.settings;
    let lastReport = performance.now();
    const request = this.storage.put(url, {
      body: createReadStream(file),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
    request.on('uploadProgress', (progress: { transferred: number; percent: number }) => {
      const now = performance.now();
      if (now - lastReport < progressIntervalMs || progress.percent >= 1) return;
      lastReport = now;
      this.options.log(`${label}: uploaded ${mebibytes(progress.transferred)} of ${mebibytes(size)} (${Math.floor(progress.percent * 100)}%)`);
    });
    try {
      await request;
    } catch (error) {
      throw new UploadError(this.redact(`upload of ${label} to ${displayUrl(url)}: ${describeFailure(error, this.options.settings)}`), error);
    }
    this.options.log(`${label}: uploaded ${mebibytes(size)}`);
  }
}

/** One failed PUT to storage; `cause` says whether another attempt may succeed. */
export class UploadError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

/** A stall, a dropped connection or a 5xx: the same upload may well succeed on another attempt. */
export function isRetryableUploadFailure(error: unknown): boolean {
  const cause = error instanceof UploadError ? error.cause : error;
  if (cause instanceof TimeoutError) return true;
  if (cause instanceof HTTPError) return RETRIED_STATUS_CODES.includes(cause.response.statusCode);
  if (cause instanceof RequestError) return RETRIED_ERROR_CODES.includes(cause.code) || cause.code === 'ERR_STREAM_PREMATURE_CLOSE';
  return false;
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function parseBody(text: string): unknown {
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Statuses whose body may say the service is closed; 401 (a bad token), 429 and 400 never mean that. */
const CLOSED_STATUSES = [403, 404, 405, 422, 501, 503];
/** What a registry being wound down says; matched in error answers only. */
const CLOSED_WORDS = /\b(no longer|deprecated|decommissioned|end[ -]of[ -]life|shut(?:ting)? ?down|sunset|retired|wound down|winding down|read[ -]only mode)\b/i;

/**
 * Whether an error answer says the service, or box creation, is closed: 410 Gone, or one of
 * CLOSED_STATUSES whose explanation uses the words of a shutdown. The explanation (or true when a
 * 410 has none); undefined for an ordinary failure.
 */
export function closedAnswer(status: number, bodyText: string): string | true | undefined {
  const said = apiErrorText(parseBody(bodyText));
  if (status === 410) return said || true;
  if (CLOSED_STATUSES.includes(status) && CLOSED_WORDS.test(said)) return said;
  return undefined;
}

/** The explanation in an API error body: Vagrant Cloud's `errors` list, HCP's `message`. */
function apiErrorText(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 300).trim();
  if (typeof body !== 'object' || body === null) return '';
  const { errors, message, error } = body as { errors?: unknown; message?: unknown; error?: unknown };
  if (Array.isArray(errors)) return errors.map(String).join('; ');
  if (typeof message === 'string') return message;
  if (typeof error === 'string') return error;
  return '';
}
