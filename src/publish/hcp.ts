// HCP Vagrant Box Registry (developer.hashicorp.com/hcp/api-docs/vagrant-box-registry, API
// version 2022-09-30), authenticated with a service principal's client id and secret
// (HCP_CLIENT_ID, HCP_CLIENT_SECRET) exchanged for an OAuth access token:
//   POST <auth>/oauth2/token   grant_type=client_credentials, audience=https://api.hashicorp.cloud
// then, below /vagrant/2022-09-30/registry/:registry:
//   GET/POST  box/:box, boxes                                   read / create the box
//   GET/POST  box/:box/version/:version, box/:box/versions      read / create the version
//   GET/POST  …/version/:version/provider/:provider, …/providers
//   GET/POST/PUT …/provider/:provider/architecture/:arch, …/architectures   (box_data: checksum)
//   GET       …/architecture/:arch/direct/upload               {url, callback, object}
//   PUT <url> (the box; no token)   PUT <callback> = …/direct/complete/:object
//   PUT       …/version/:version/release
import type { ApiClient } from './api-client.ts';
import type { BoxArtifact } from './artifacts.ts';
import { ApiResponseError, PublishError } from './errors.ts';
import { createOrFindExisting, readOrCreateVersion, type HostedRegistry, type RemoteProvider, type RemoteVersionState, type UploadTarget } from './hosted.ts';
import type { Redactor } from './secrets.ts';
import { sleep } from '../exec/proc.ts';

export const DEFAULT_HCP_API_URL = 'https://api.cloud.hashicorp.com';
export const DEFAULT_HCP_AUTH_URL = 'https://auth.idp.hashicorp.com';
const DEFAULT_TOKEN_PATH = '/oauth2/token';
const TOKEN_AUDIENCE = 'https://api.hashicorp.cloud';
const API_PATH = '/vagrant/2022-09-30';
/** A token this close to its expiry is replaced before use. */
const TOKEN_EXPIRY_MARGIN_MS = 60_000;
/** Creating a box is an asynchronous operation in HCP: how often to look for it before giving up. */
const BOX_CREATION_CHECKS = 8;

export interface HcpCredentials {
  clientId: string | undefined;
  clientSecret: string | undefined;
  /** HCP_AUTH_URL: the identity provider's base URL, or the full token URL. */
  authUrl: string;
  /** HCP_TOKEN_PATH, below authUrl when it is a base URL. */
  tokenPath?: string;
}

/** OAuth client-credentials access tokens, fetched when first needed and renewed before expiry. */
export class HcpAccessToken {
  private token: string | undefined;
  private expiresAt = 0;
  readonly tokenUrl: string;

  constructor(
    private readonly api: () => ApiClient,
    private readonly credentials: HcpCredentials,
    private readonly redactor: Redactor,
  ) {
    const auth = new URL(credentials.authUrl);
    this.tokenUrl = auth.pathname === '/' || auth.pathname === '' ? new URL(credentials.tokenPath ?? DEFAULT_TOKEN_PATH, auth).href : auth.href;
  }

  async get(): Promise<string> {
    if (this.token && Date.now() < this.expiresAt - TOKEN_EXPIRY_MARGIN_MS) return this.token;
    let response;
    try {
      response = await this.api().send({
        method: 'POST',
        url: this.tokenUrl,
        auth: false,
        what: 'get an HCP access token',
        form: {
          grant_type: 'client_credentials',
          client_id: this.credentials.clientId ?? '',
          client_secret: this.credentials.clientSecret ?? '',
          audience: TOKEN_AUDIENCE,
        },
        assume: { status: 200, body: { access_token: 'DRY-RUN-TOKEN', expires_in: 3600 } },
      });
    } catch (error) {
      if (error instanceof ApiResponseError && (error.statusCode === 400 || error.statusCode === 401 || error.statusCode === 403)) {
        throw new PublishError(`${error.message}; check HCP_CLIENT_ID and HCP_CLIENT_SECRET (a service principal key with access to the registry)`);
      }
      throw error;
    }
    const { access_token: token, expires_in: expiresIn } = response.body as { access_token?: unknown; expires_in?: unknown };
    if (typeof token !== 'string' || !token) throw new PublishError(`HCP's token endpoint ${this.tokenUrl} answered without an access_token`);
    this.redactor.add(token);
    this.token = token;
    this.expiresAt = Date.now() + (typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn : 3600) * 1000;
    return token;
  }
}

export interface HcpRegistryOptions {
  api: ApiClient;
  token: HcpAccessToken;
  credentials: HcpCredentials;
  /** HCP_API_URL or the default. */
  apiUrl: string;
  registry: string;
  boxName: string;
  description: string;
  version: string;
  versionDescription: string;
  log: (line: string) => void;
  /** Between checks for a box being created; grows exponentially up to this. */
  maxPollDelayMs: number;
  signal?: AbortSignal;
}

interface ArchitectureRecord {
  box_data?: { checksum?: string; checksum_type?: string; size?: string | number };
}

export class HcpRegistry implements HostedRegistry {
  readonly label: string;
  readonly destination: string;
  private readonly origin: string;
  private readonly api: ApiClient;

  constructor(private readonly options: HcpRegistryOptions) {
    this.api = options.api;
    this.origin = options.apiUrl.replace(/\/+$/, '');
    this.label = `HCP Vagrant Box Registry (${this.origin}, registry ${options.registry})`;
    this.destination = `hcp ${this.origin} ${options.registry}/${options.boxName}`;
  }

  private get registryUrl(): string {
    return `${this.origin}${API_PATH}/registry/${encodeURIComponent(this.options.registry)}`;
  }

  private get boxUrl(): string {
    return `${this.registryUrl}/box/${encodeURIComponent(this.options.boxName)}`;
  }

  private get versionUrl(): string {
    return `${this.boxUrl}/version/${encodeURIComponent(this.options.version)}`;
  }

  private providerUrl(artifact: BoxArtifact): string {
    return `${this.versionUrl}/provider/${encodeURIComponent(artifact.provider)}`;
  }

  private architectureUrl(artifact: BoxArtifact): string {
    return `${this.providerUrl(artifact)}/architecture/${encodeURIComponent(artifact.architecture)}`;
  }

  async authenticate(): Promise<void> {
    const missing = [
      ...(this.options.credentials.clientId ? [] : ['HCP_CLIENT_ID']),
      ...(this.options.credentials.clientSecret ? [] : ['HCP_CLIENT_SECRET']),
    ];
    if (missing.length) {
      const why = `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set: create a service principal key in HCP and export its client id and secret`;
      if (!this.api.dryRun) throw new PublishError(why);
      this.options.log(`[dry run] ${why}; a real run would stop here`);
    }
    await this.options.token.get();
  }

  async ensureBox(): Promise<void> {
    const read = () => this.api.send({ method: 'GET', url: this.boxUrl, auth: true, what: 'read the box', accept: [404], assume: { status: 404, body: {} } });
    if ((await read()).status !== 404) return;
    await createOrFindExisting(
      this.api,
      {
        method: 'POST',
        url: `${this.registryUrl}/boxes`,
        auth: true,
        what: `create the box ${this.options.registry}/${this.options.boxName}`,
        json: { name: this.options.boxName, description: this.options.description, is_private: false },
        assume: { status: 200, body: {} },
        note: '(only when the box does not exist)',
      },
      read,
    );
    if (this.api.dryRun) return;
    // The box is created by an asynchronous operation: wait until it can be read.
    for (let check = 1; check <= BOX_CREATION_CHECKS; check++) {
      if ((await read()).status !== 404) return;
      await sleep(Math.min(500 * 2 ** (check - 1), this.options.maxPollDelayMs));
      this.options.signal?.throwIfAborted();
    }
    throw new PublishError(`the box ${this.options.registry}/${this.options.boxName} was created but did not become readable; check it in HCP and run the command again`);
  }

  async ensureVersion(): Promise<RemoteVersionState> {
    const response = await readOrCreateVersion(this.api, {
      versionUrl: this.versionUrl,
      createUrl: `${this.boxUrl}/versions`,
      version: this.options.version,
      json: { name: this.options.version, description: this.options.versionDescription },
      assumeCreated: { status: 200, body: { version: { name: this.options.version, state: 'UNRELEASED' } } },
    });
    const state = (response.body as { version?: { state?: unknown } }).version?.state;
    // A version just created may be answered without its state: new versions start unreleased.
    if (state === undefined || state === 'UNRELEASED') return 'unreleased';
    if (state === 'ACTIVE') return 'released';
    return typeof state === 'string' ? state.toLowerCase() : 'in an unknown state';
  }

  async readProvider(artifact: BoxArtifact): Promise<RemoteProvider> {
    const response = await this.api.send({
      method: 'GET',
      url: this.architectureUrl(artifact),
      auth: true,
      what: `read ${artifact.provider} (${artifact.architecture})`,
      accept: [404],
      assume: { status: 404, body: {} },
    });
    if (response.status === 404) return { exists: false };
    return { exists: true, ...sha256Of(response.body) };
  }

  async saveProvider(artifact: BoxArtifact, remote: RemoteProvider): Promise<void> {
    const boxData = { checksum: artifact.sha256, checksum_type: 'SHA256' };
    if (remote.exists) {
      await this.api.send({
        method: 'PUT',
        url: this.architectureUrl(artifact),
        auth: true,
        what: `update ${artifact.provider} (${artifact.architecture})`,
        json: { box_data: boxData },
        assume: { status: 200, body: {} },
      });
      return;
    }
    const readProvider = () =>
      this.api.send({ method: 'GET', url: this.providerUrl(artifact), auth: true, what: `read provider ${artifact.provider}`, accept: [404], assume: { status: 404, body: {} } });
    if ((await readProvider()).status === 404) {
      await createOrFindExisting(
        this.api,
        { method: 'POST', url: `${this.versionUrl}/providers`, auth: true, what: `create provider ${artifact.provider}`, json: { name: artifact.provider }, assume: { status: 200, body: {} } },
        readProvider,
      );
    }
    await createOrFindExisting(
      this.api,
      {
        method: 'POST',
        url: `${this.providerUrl(artifact)}/architectures`,
        auth: true,
        what: `create architecture ${artifact.architecture} of ${artifact.provider}`,
        json: { architecture_type: artifact.architecture, default: true, box_data: boxData },
        assume: { status: 200, body: {} },
      },
      () => this.api.send({ method: 'GET', url: this.architectureUrl(artifact), auth: true, what: `read ${artifact.provider} (${artifact.architecture})`, accept: [404], assume: { status: 404, body: {} } }),
    );
  }

  async requestUpload(artifact: BoxArtifact): Promise<UploadTarget> {
    const response = await this.api.send({
      method: 'GET',
      url: `${this.architectureUrl(artifact)}/direct/upload`,
      auth: true,
      what: `prepare the upload of ${artifact.provider}`,
      assume: { status: 200, body: { url: 'https://storage.invalid/UPLOAD-URL', object: 'OBJECT', callback: `${this.architectureUrl(artifact)}/direct/complete/OBJECT` } },
    });
    const { url, callback, object } = response.body as { url?: unknown; callback?: unknown; object?: unknown };
    if (typeof url !== 'string' || (typeof callback !== 'string' && typeof object !== 'string')) {
      throw new PublishError(`HCP answered the upload request for ${artifact.provider} without an upload url and callback`);
    }
    // The token goes to the configured API origin only: of a callback URL, only its path is used.
    const completeUrl =
      typeof callback === 'string'
        ? (() => {
            const parsed = new URL(callback, this.origin);
            return `${this.origin}${parsed.pathname}${parsed.search}`;
          })()
        : `${this.architectureUrl(artifact)}/direct/complete/${encodeURIComponent(String(object))}`;
    return {
      url,
      complete: async () => {
        await this.api.send({ method: 'PUT', url: completeUrl, auth: true, what: `complete the upload of ${artifact.provider}`, assume: { status: 200, body: {} } });
      },
    };
  }

  async verifyProvider(artifact: BoxArtifact): Promise<string | undefined> {
    const response = await this.api.send({
      method: 'GET',
      url: this.architectureUrl(artifact),
      auth: true,
      what: `read back ${artifact.provider} (${artifact.architecture})`,
      assume: { status: 200, body: { architecture: { box_data: { checksum: artifact.sha256, checksum_type: 'SHA256', size: String(artifact.size) } } } },
    });
    const { sha256 } = sha256Of(response.body);
    if (sha256 !== artifact.sha256) return `HCP has checksum ${sha256 ?? 'none'} for ${artifact.provider} (${artifact.architecture}), not ${artifact.sha256}`;
    const size = (response.body as { architecture?: ArchitectureRecord }).architecture?.box_data?.size;
    if (size !== undefined && Number(size) !== artifact.size) return `HCP has ${size} bytes for ${artifact.provider} (${artifact.architecture}), not ${artifact.size}`;
    return undefined;
  }

  async release(): Promise<void> {
    await this.api.send({ method: 'PUT', url: `${this.versionUrl}/release`, auth: true, what: `release version ${this.options.version}`, assume: { status: 200, body: {} } });
  }
}

function sha256Of(body: unknown): { sha256?: string } {
  const data = (body as { architecture?: ArchitectureRecord }).architecture?.box_data;
  if (typeof data?.checksum !== 'string' || data.checksum_type?.toUpperCase() !== 'SHA256') return {};
  return { sha256: data.checksum.toLowerCase() };
}
