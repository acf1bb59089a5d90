// A stand-in for Vagrant Cloud's API v2 and the HCP Vagrant Box Registry (with HCP's OAuth token
// endpoint and a pre-signed storage service), on 127.0.0.1, implementing the documented endpoints
// boxsmith uses, keeping boxes, versions, providers and uploaded bytes in memory, and failing on
// request: an HTTP status a number of times, a stalled upload, a refused upload; and, like a
// registry being wound down, closed (every API request) or closed to new boxes only.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
  bytes: number;
}

/** An injected failure: requests matching `method` and `path` get `action`, `times` times (Infinity: always). */
export interface Failure {
  method: string;
  path: RegExp;
  times: number;
  /** A status (with a body), `stall` (read a little, never answer), or `reset` (drop the connection). */
  action: { status: number; body?: unknown } | 'stall' | 'reset';
}

interface ProviderState {
  name: string;
  architecture: string;
  checksum?: string;
  checksumType?: string;
  uploadedSha256?: string;
  uploadedSize?: number;
}

interface VersionState {
  version: string;
  description?: string;
  status: 'unreleased' | 'active';
  providers: Map<string, ProviderState>;
}

interface BoxState {
  owner: string;
  name: string;
  description?: string;
  versions: Map<string, VersionState>;
}

/** How the stand-in answers once closed: the whole API, or only the creation of boxes. */
export interface Closure {
  scope: 'service' | 'box-creation';
  status: number;
  body: unknown;
}

export const VAGRANT_CLOUD_TOKEN = 'vct-SECRET-0123456789abcdef-token';
export const HCP_CLIENT_ID = 'hcp-client-id-4f6b1c';
export const HCP_CLIENT_SECRET = 'hcp-SECRET-client-secret-9a8b7c6d';

export class RegistryStandIn {
  readonly seen: SeenRequest[] = [];
  readonly failures: Failure[] = [];
  readonly boxes = new Map<string, BoxState>();
  /** Access tokens the OAuth endpoint handed out. */
  readonly issuedTokens: string[] = [];
  /** Set: the registry answers as a retired one does (OAuth, HashiCorp's own, still answers). */
  closure: Closure | undefined;
  private readonly uploads = new Map<string, { key: string; bytes?: Buffer }>();
  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<RegistryStandIn> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const standIn = new RegistryStandIn(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => void standIn.handle(request, response));
    return standIn;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  fail(failure: Failure): void {
    this.failures.push(failure);
  }

  /** Requests other than uploads to storage, as `METHOD /path`. */
  apiCalls(): string[] {
    return this.seen.filter((r) => !r.path.startsWith('/storage/')).map((r) => `${r.method} ${r.path}`);
  }

  box(owner: string, name: string): BoxState | undefined {
    return this.boxes.get(`${owner}/${name}`);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.origin);
    const method = request.method ?? 'GET';
    const failure = this.failures.find((f) => f.method === method && f.path.test(url.pathname) && f.times > 0);
    if (failure) {
      failure.times--;
      if (failure.action === 'stall') {
        // Take a little of the body, then neither read more nor answer: the client must give up.
        request.once('data', () => request.pause());
        this.seen.push({ method, path: url.pathname, authorization: request.headers.authorization, body: '', bytes: 0 });
        return;
      }
      if (failure.action === 'reset') {
        this.seen.push({ method, path: url.pathname, authorization: request.headers.authorization, body: '', bytes: 0 });
        request.socket.destroy();
        return;
      }
      const body = await readBody(request);
      this.seen.push({ method, path: url.pathname, authorization: request.headers.authorization, body: body.toString('utf8'), bytes: body.length });
      return send(response, failure.action.status, failure.action.body ?? { errors: ['injected failure'] });
    }
    const body = await readBody(request);
    this.seen.push({ method, path: url.pathname, authorization: request.headers.authorization, body: url.pathname.startsWith('/storage/') ? '' : body.toString('utf8'), bytes: body.length });
    if (this.closure && this.closedFor(method, url.pathname)) return send(response, this.closure.status, this.closure.body);
    try {
      if (url.pathname.startsWith('/storage/')) return this.storage(method, url, request, body, response);
      if (url.pathname === '/oauth2/token') return this.oauth(method, body, response);
      if (url.pathname.startsWith('/api/v2/')) return this.vagrantCloud(method, url.pathname.slice('/api/v2'.length), request, body, response);
      if (url.pathname.startsWith('/vagrant/2022-09-30/')) return this.hcp(method, url.pathname.slice('/vagrant/2022-09-30'.length), request, body, response);
      send(response, 404, { errors: ['no such endpoint'] });
    } catch (error) {
      send(response, 500, { errors: [(error as Error).message] });
    }
  }

  private closedFor(method: string, path: string): boolean {
    const api = path.startsWith('/api/v2/') || path.startsWith('/vagrant/2022-09-30/');
    if (this.closure?.scope === 'service') return api;
    return method === 'POST' && (path === '/api/v2/boxes' || /^\/vagrant\/2022-09-30\/registry\/[^/]+\/boxes$/.test(path));
  }

  /** Pre-signed storage: PUT with the signature in the query; never wants a token. */
  private storage(method: string, url: URL, request: IncomingMessage, body: Buffer, response: ServerResponse): void {
    const upload = this.uploads.get(url.pathname.slice('/storage/'.length));
    if (method !== 'PUT' || !upload || url.searchParams.get('signature') !== 'presigned') return send(response, 403, 'SignatureDoesNotMatch');
    if (request.headers['transfer-encoding'] === 'chunked') return send(response, 411, 'chunked uploads are not accepted');
    upload.bytes = body;
    send(response, 200, '');
  }

  private newUpload(key: string): { id: string; url: string } {
    const id = randomBytes(8).toString('hex');
    this.uploads.set(id, { key });
    return { id, url: `${this.origin}/storage/${id}?signature=presigned` };
  }

  /** Completes an upload: the bytes stored must match the checksum of the provider record. */
  private complete(id: string, provider: ProviderState, response: ServerResponse): void {
    const upload = this.uploads.get(id);
    if (!upload?.bytes) return send(response, 422, { errors: ['no upload to complete'] });
    const sha256 = createHash('sha256').update(upload.bytes).digest('hex');
    if (provider.checksum && provider.checksum !== sha256) return send(response, 422, { errors: [`checksum mismatch: uploaded ${sha256}`] });
    provider.uploadedSha256 = sha256;
    provider.uploadedSize = upload.bytes.length;
    send(response, 200, {});
  }

  private oauth(method: string, body: Buffer, response: ServerResponse): void {
    const form = new URLSearchParams(body.toString('utf8'));
    if (method !== 'POST' || form.get('grant_type') !== 'client_credentials' || form.get('audience') !== 'https://api.hashicorp.cloud') {
      return send(response, 400, { error: 'invalid_request' });
    }
    if (form.get('client_id') !== HCP_CLIENT_ID || form.get('client_secret') !== HCP_CLIENT_SECRET) return send(response, 401, { error: 'access_denied' });
    const token = `hcp-access-${randomBytes(12).toString('hex')}`;
    this.issuedTokens.push(token);
    send(response, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 });
  }

  // Vagrant Cloud API v2 --------------------------------------------------------------------------

  private vagrantCloud(method: string, path: string, request: IncomingMessage, body: Buffer, response: ServerResponse): void {
    if (request.headers.authorization !== `Bearer ${VAGRANT_CLOUD_TOKEN}`) return send(response, 401, { errors: ['Invalid token'], success: false });
    const json = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, Record<string, unknown>>) : {};
    let m: RegExpExecArray | null;
    if (method === 'POST' && path === '/boxes') {
      const { username, name, short_description: description } = json.box as { username: string; name: string; short_description: string };
      if (this.boxes.has(`${username}/${name}`)) return send(response, 422, { errors: ['Name has already been taken'] });
      this.boxes.set(`${username}/${name}`, { owner: username, name, description, versions: new Map() });
      return send(response, 201, { tag: `${username}/${name}` });
    }
    if ((m = /^\/box\/([^/]+)\/([^/]+)$/.exec(path)) && method === 'GET') {
      const box = this.box(m[1]!, m[2]!);
      return box ? send(response, 200, { tag: `${box.owner}/${box.name}`, versions: [...box.versions.values()].map(vcVersion) }) : send(response, 404, { errors: ['Resource not found!'] });
    }
    if ((m = /^\/box\/([^/]+)\/([^/]+)\/versions$/.exec(path)) && method === 'POST') {
      const box = this.box(m[1]!, m[2]!);
      if (!box) return send(response, 404, { errors: ['Resource not found!'] });
      const { version, description } = json.version as { version: string; description: string };
      if (box.versions.has(version)) return send(response, 422, { errors: ['Version has already been taken'] });
      const state: VersionState = { version, description, status: 'unreleased', providers: new Map() };
      box.versions.set(version, state);
      return send(response, 201, vcVersion(state));
    }
    const versionPath = /^\/box\/([^/]+)\/([^/]+)\/version\/([^/]+)(\/.*)?$/.exec(path);
    if (!versionPath) return send(response, 404, { errors: ['Resource not found!'] });
    const version = this.box(versionPath[1]!, versionPath[2]!)?.versions.get(versionPath[3]!);
    const rest = versionPath[4] ?? '';
    if (!version) return send(response, 404, { errors: ['Resource not found!'] });
    if (rest === '' && method === 'GET') return send(response, 200, vcVersion(version));
    if (rest === '/release' && method === 'PUT') {
      if (version.status !== 'unreleased') return send(response, 422, { errors: ['Version is already released'] });
      if (![...version.providers.values()].every((p) => p.uploadedSha256)) return send(response, 422, { errors: ['Every provider needs a box'] });
      version.status = 'active';
      return send(response, 200, vcVersion(version));
    }
    if (rest === '/providers' && method === 'POST') {
      const provider = json.provider as { name: string; architecture: string; checksum?: string; checksum_type?: string };
      const key = `${provider.name}/${provider.architecture}`;
      if (version.providers.has(key)) return send(response, 422, { errors: ['Provider has already been taken'] });
      const state: ProviderState = { name: provider.name, architecture: provider.architecture, ...(provider.checksum ? { checksum: provider.checksum, checksumType: provider.checksum_type } : {}) };
      version.providers.set(key, state);
      return send(response, 201, vcProvider(state));
    }
    if ((m = /^\/provider\/([^/]+)\/([^/]+)(\/.*)?$/.exec(rest))) {
      const provider = version.providers.get(`${m[1]}/${m[2]}`);
      const action = m[3] ?? '';
      if (!provider) return send(response, 404, { errors: ['Resource not found!'] });
      if (action === '' && method === 'GET') return send(response, 200, vcProvider(provider));
      if (action === '' && method === 'PUT') {
        const update = json.provider as { checksum?: string; checksum_type?: string };
        if (update.checksum) Object.assign(provider, { checksum: update.checksum, checksumType: update.checksum_type, uploadedSha256: undefined });
        return send(response, 200, vcProvider(provider));
      }
      if (action === '/upload/direct' && method === 'GET') {
        const upload = this.newUpload(`${versionPath[1]}/${versionPath[2]}/${version.version}/${m[1]}/${m[2]}`);
        return send(response, 200, { upload_path: upload.url, callback: `${this.origin}/api/v2${path}/${upload.id}` });
      }
      const callback = /^\/upload\/direct\/([0-9a-f]+)$/.exec(action);
      if (callback && method === 'PUT') return this.complete(callback[1]!, provider, response);
    }
    send(response, 404, { errors: ['Resource not found!'] });
  }

  // HCP Vagrant Box Registry 2022-09-30 -----------------------------------------------------------

  private hcp(method: string, path: string, request: IncomingMessage, body: Buffer, response: ServerResponse): void {
    const token = request.headers.authorization?.replace(/^Bearer /, '');
    if (!token || !this.issuedTokens.includes(token)) return send(response, 401, { code: 16, message: 'unauthenticated' });
    const json = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    const notFound = () => send(response, 404, { code: 5, message: 'not found' });
    let m: RegExpExecArray | null;
    if ((m = /^\/registry\/([^/]+)\/boxes$/.exec(path)) && method === 'POST') {
      const name = json.name as string;
      if (this.boxes.has(`${m[1]}/${name}`)) return send(response, 409, { code: 6, message: 'box already exists' });
      this.boxes.set(`${m[1]}/${name}`, { owner: m[1]!, name, description: json.description as string, versions: new Map() });
      return send(response, 200, { operation: { id: 'op-1', state: 'RUNNING' } });
    }
    if ((m = /^\/registry\/([^/]+)\/box\/([^/]+)$/.exec(path)) && method === 'GET') {
      const box = this.box(m[1]!, m[2]!);
      return box ? send(response, 200, { box: { name: box.name } }) : notFound();
    }
    if ((m = /^\/registry\/([^/]+)\/box\/([^/]+)\/versions$/.exec(path)) && method === 'POST') {
      const box = this.box(m[1]!, m[2]!);
      if (!box) return notFound();
      const name = json.name as string;
      if (box.versions.has(name)) return send(response, 409, { code: 6, message: 'version already exists' });
      const state: VersionState = { version: name, description: json.description as string, status: 'unreleased', providers: new Map() };
      box.versions.set(name, state);
      return send(response, 200, { version: hcpVersion(state) });
    }
    const versionPath = /^\/registry\/([^/]+)\/box\/([^/]+)\/version\/([^/]+)(\/.*)?$/.exec(path);
    if (!versionPath) return notFound();
    const version = this.box(versionPath[1]!, versionPath[2]!)?.versions.get(versionPath[3]!);
    const rest = versionPath[4] ?? '';
    if (!version) return notFound();
    if (rest === '' && method === 'GET') return send(response, 200, { version: hcpVersion(version) });
    if (rest === '/release' && method === 'PUT') {
      if (version.status !== 'unreleased') return send(response, 400, { code: 9, message: 'version is not unreleased' });
      const architectures = [...version.providers.values()].filter((p) => p.architecture !== '');
      if (!architectures.every((p) => p.uploadedSha256)) return send(response, 400, { code: 9, message: 'every architecture needs a box' });
      version.status = 'active';
      return send(response, 200, {});
    }
    if (rest === '/providers' && method === 'POST') {
      const name = json.name as string;
      if (version.providers.has(`${name}/`)) return send(response, 409, { code: 6, message: 'provider already exists' });
      version.providers.set(`${name}/`, { name, architecture: '' });
      return send(response, 200, {});
    }
    if ((m = /^\/provider\/([^/]+)$/.exec(rest)) && method === 'GET') return version.providers.has(`${m[1]}/`) ? send(response, 200, { provider: { name: m[1] } }) : notFound();
    if ((m = /^\/provider\/([^/]+)\/architectures$/.exec(rest)) && method === 'POST') {
      if (!version.providers.has(`${m[1]}/`)) return notFound();
      const architecture = json.architecture_type as string;
      const boxData = json.box_data as { checksum?: string; checksum_type?: string };
      const key = `${m[1]}/${architecture}`;
      if (version.providers.has(key)) return send(response, 409, { code: 6, message: 'architecture already exists' });
      version.providers.set(key, { name: m[1]!, architecture, ...(boxData.checksum ? { checksum: boxData.checksum, checksumType: boxData.checksum_type } : {}) });
      return send(response, 200, {});
    }
    if ((m = /^\/provider\/([^/]+)\/architecture\/([^/]+)(\/.*)?$/.exec(rest))) {
      const provider = version.providers.get(`${m[1]}/${m[2]}`);
      const action = m[3] ?? '';
      if (!provider) return notFound();
      if (action === '' && method === 'GET') return send(response, 200, { architecture: hcpArchitecture(provider) });
      if (action === '' && method === 'PUT') {
        const boxData = (json.box_data ?? {}) as { checksum?: string; checksum_type?: string };
        if (boxData.checksum) Object.assign(provider, { checksum: boxData.checksum, checksumType: boxData.checksum_type, uploadedSha256: undefined, uploadedSize: undefined });
        return send(response, 200, {});
      }
      if (action === '/direct/upload' && method === 'GET') {
        const upload = this.newUpload(`${versionPath[1]}/${versionPath[2]}/${version.version}/${m[1]}/${m[2]}`);
        return send(response, 200, { url: upload.url, object: upload.id, callback: `${this.origin}/vagrant/2022-09-30${path.replace(/\/direct\/upload$/, '')}/direct/complete/${upload.id}` });
      }
      const complete = /^\/direct\/complete\/([0-9a-f]+)$/.exec(action);
      if (complete && method === 'PUT') return this.complete(complete[1]!, provider, response);
    }
    notFound();
  }
}

function vcVersion(version: VersionState) {
  return { version: version.version, status: version.status, description_markdown: version.description, providers: [...version.providers.values()].map(vcProvider) };
}

function vcProvider(provider: ProviderState) {
  return {
    name: provider.name,
    architecture: provider.architecture,
    default_architecture: true,
    hosted: true,
    checksum: provider.checksum ?? null,
    checksum_type: provider.checksumType ?? null,
    download_url: `https://vagrantcloud.invalid/${provider.name}.box`,
  };
}

function hcpVersion(version: VersionState) {
  return { name: version.version, description: version.description, state: version.status === 'active' ? 'ACTIVE' : 'UNRELEASED' };
}

function hcpArchitecture(provider: ProviderState) {
  return {
    architecture_type: provider.architecture,
    default: true,
    box_data: {
      ...(provider.checksum ? { checksum: provider.checksum, checksum_type: provider.checksumType } : {}),
      ...(provider.uploadedSize !== undefined ? { size: String(provider.uploadedSize) } : {}),
    },
  };
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
