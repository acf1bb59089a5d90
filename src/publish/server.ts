// Serves a catalog tree to the vagrant client on this machine, the way nginx or S3 must serve it
// for real (docs/hosting.md):
//   - `vagrant box add <org>/<box>` (with VAGRANT_SERVER_URL) and `vagrant box add <url>` send HEAD,
//     then GET, and take the answer for a catalog only when its Content-Type is application/json
//     (else they try to unpack it as a box: "bsdtar: Unrecognized archive format"). Catalogs are
//     the extension-less files /<org>/<box> and the .json files; both get that type.
//   - vagrant resumes an interrupted download with curl's `--continue-at -`, a Range request:
//     byte ranges (with If-Range) are served as 206 Partial Content.
// GET and HEAD only, files below the root only, no hidden files (temporary files, locks), no
// symbolic links, no directory listings; idle and slow connections are closed, and their number capped.
import { createReadStream } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

export const DEFAULT_SERVE_PORT = 8099;

export interface CatalogServerOptions {
  root: string;
  /** 0 picks a free port. */
  port: number;
  /** Loopback only by default: this is a tool for the machine it runs on. */
  host?: string;
  /** One line per request: `GET /phusion/ubuntu-14.04-amd64 200 1234`. */
  onRequest?: (line: string) => void;
  /** A connection with nothing sent either way for this long is closed. Default 60 s. */
  idleTimeoutMs?: number;
}

/** Connections served at once; more wait in the kernel's queue or are refused. */
const MAX_CONNECTIONS = 64;

export interface CatalogServer {
  /** e.g. http://127.0.0.1:8099 (no trailing slash): the value for VAGRANT_SERVER_URL and base-url. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The type a file of a catalog tree is served as. */
export function contentTypeFor(urlPath: string): string {
  if (urlPath.endsWith('.box')) return 'application/octet-stream';
  if (urlPath.endsWith('.sha256')) return 'text/plain; charset=utf-8';
  if (urlPath.endsWith('.json')) return 'application/json';
  // /<org>/<box>: a catalog. Box names contain dots (ubuntu-14.04-amd64), so no extension test.
  if (urlPath.split('/').filter(Boolean).length === 2) return 'application/json';
  return 'application/octet-stream';
}

export async function startCatalogServer(options: CatalogServerOptions): Promise<CatalogServer> {
  const root = await realpath(options.root);
  const host = options.host ?? '127.0.0.1';
  const server = createServer((request, response) => {
    handle(root, request, response)
      .then((bytes) => options.onRequest?.(`${request.method} ${request.url} ${response.statusCode} ${bytes}`))
      .catch((error: unknown) => {
        // A client that goes away mid-download (vagrant interrupted) is not a server failure.
        const aborted = (error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
        options.onRequest?.(`${request.method} ${request.url} ${aborted ? `${response.statusCode} aborted by the client` : `failed: ${(error as Error).message}`}`);
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
        else response.destroy();
      });
  });
  // A client that stalls (idle, or sending its request slowly) is cut off: it must neither keep
  // the process alive once asked to stop nor hold one of the few connections for ever.
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  server.keepAliveTimeout = Math.min(5_000, idleTimeoutMs);
  server.headersTimeout = Math.min(20_000, idleTimeoutMs);
  server.requestTimeout = Math.min(30_000, idleTimeoutMs);
  server.setTimeout(idleTimeoutMs); // without a 'timeout' listener, Node destroys the idle socket
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, port, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Answers one request; resolves to the number of body bytes sent. */
async function handle(root: string, request: IncomingMessage, response: ServerResponse): Promise<number> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET and HEAD\n');
    return 0;
  }
  const file = await resolveFile(root, request.url ?? '/');
  if (!file) {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return 0;
  }
  const { file: filePath, size, mtime, urlPath } = file;
  const etag = `"${size.toString(16)}-${Math.floor(mtime.getTime()).toString(16)}"`;
  const lastModified = mtime.toUTCString();
  const type = contentTypeFor(urlPath);
  const headers: Record<string, string> = {
    'content-type': type,
    'accept-ranges': 'bytes',
    etag,
    'last-modified': lastModified,
    // Catalogs change with every publish; a box file of a version never does.
    'cache-control': type === 'application/json' ? 'no-cache' : 'public, max-age=86400',
  };
  const head = request.method === 'HEAD';

  let range = parseRange(request.headers.range, size);
  const ifRange = request.headers['if-range'];
  // A resumed download of a file that changed since must start again from the beginning.
  if (range && ifRange !== undefined && ifRange !== etag && ifRange !== lastModified) range = null;
  if (range === 'unsatisfiable') {
    response.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-type': 'text/plain' }).end();
    return 0;
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  const length = size === 0 ? 0 : end - start + 1;
  if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
  headers['content-length'] = String(length);
  response.writeHead(range ? 206 : 200, headers);
  if (head || length === 0) {
    response.end();
    return 0;
  }
  await pipeline(createReadStream(filePath, { start, end }), response);
  return length;
}

/** The regular file a URL names below the root, or undefined (missing, hidden, outside, a directory). */
async function resolveFile(root: string, url: string): Promise<{ file: string; size: number; mtime: Date; urlPath: string } | undefined> {
  let urlPath: string;
  try {
    urlPath = decodeURIComponent(new URL(url, 'http://localhost').pathname);
  } catch {
    return undefined;
  }
  const segments = urlPath.split('/').filter(Boolean);
  if (!segments.length || segments.some((segment) => segment.startsWith('.') || segment.includes('\0') || segment.includes('\\'))) return undefined;
  try {
    // No symbolic link is followed, even one inside the tree: it could name a hidden file or
    // anything outside. Each step is checked without following links.
    let file = root;
    for (const segment of segments) {
      file = path.join(file, segment);
      if ((await lstat(file)).isSymbolicLink()) return undefined;
    }
    if (!file.startsWith(root + path.sep)) return undefined;
    const info = await lstat(file);
    if (!info.isFile()) return undefined;
    return { file, size: info.size, mtime: info.mtime, urlPath: `/${segments.join('/')}` };
  } catch {
    return undefined;
  }
}

/**
 * One byte range of `Range: bytes=…` (RFC 9110 14.1.2): `a-b`, `a-` or `-n` (the last n bytes).
 * null: no range, or one to ignore (another unit, several ranges, bad syntax): send the whole file.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return null;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
