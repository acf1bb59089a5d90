// A catalog host for the mirror tests: node's http server on 127.0.0.1 serving given bytes at given
// paths, with `Range: bytes=N-` answered 206 as box hosts do, an optional slow pace (so a test can
// interrupt a download), and a record of each request's path and Range header.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class SourceServer {
  readonly seen: Array<{ path: string; range: string | undefined }> = [];
  private readonly files = new Map<string, { body: Buffer; type: string }>();
  /** Bytes per 20 ms tick for the box files; 0: as fast as possible. */
  pace = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    server.on('request', (request, response) => {
      const urlPath = new URL(request.url ?? '/', url).pathname;
      this.seen.push({ path: urlPath, range: request.headers.range });
      const file = this.files.get(urlPath);
      if (!file) {
        response.writeHead(404).end();
        return;
      }
      const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      if (start >= file.body.length && range) {
        response.writeHead(416, { 'content-range': `bytes */${file.body.length}` }).end();
        return;
      }
      const headers: Record<string, string | number> = { 'content-type': file.type, 'content-length': file.body.length - start, 'accept-ranges': 'bytes' };
      if (range) headers['content-range'] = `bytes ${start}-${file.body.length - 1}/${file.body.length}`;
      response.writeHead(range ? 206 : 200, headers);
      const rest = file.body.subarray(start);
      if (!this.pace || file.type === 'application/json') {
        response.end(rest);
        return;
      }
      let offset = 0;
      const timer = setInterval(() => {
        if (response.destroyed) return clearInterval(timer);
        response.write(rest.subarray(offset, offset + this.pace));
        offset += this.pace;
        if (offset >= rest.length) {
          clearInterval(timer);
          response.end();
        }
      }, 20);
      response.once('close', () => clearInterval(timer));
    });
  }

  static async start(): Promise<SourceServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new SourceServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  serve(urlPath: string, body: Buffer | string, type = 'application/octet-stream'): string {
    this.files.set(urlPath, { body: Buffer.isBuffer(body) ? body : Buffer.from(body), type });
    return this.url + urlPath;
  }

  rangesOf(urlPath: string): Array<string | undefined> {
    return this.seen.filter((request) => request.path === urlPath).map((request) => request.range);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
