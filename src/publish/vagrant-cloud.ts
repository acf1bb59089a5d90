// Vagrant Cloud's API v2 (developer.hashicorp.com/vagrant/vagrant-cloud/api/v2), with the token
// from VAGRANT_CLOUD_TOKEN as a Bearer header:
//   GET  /api/v2/box/:owner/:name                                   read box (404: create it)
//   POST /api/v2/boxes                                              {box: {username, name, ...}}
//   GET  /api/v2/box/:owner/:name/version/:version                  read version (status)
//   POST /api/v2/box/:owner/:name/versions                          {version: {version, description}}
//   GET  …/version/:version/provider/:provider/:architecture        read provider
//   POST …/version/:version/providers                               {provider: {name, checksum, …}}
//   PUT  …/version/:version/provider/:provider/:architecture        update provider
//   GET  …/provider/:provider/:architecture/upload/direct           {upload_path, callback}
//   PUT  <upload_path>  (the box; no token)     PUT <callback> (token)
//   PUT  …/version/:version/release
import type { ApiClient } from './api-client.ts';
import type { BoxArtifact } from './artifacts.ts';
import { ApiResponseError, PublishError } from './errors.ts';
import { createOrFindExisting, readOrCreateVersion, type HostedRegistry, type RemoteProvider, type RemoteVersionState, type UploadTarget } from './hosted.ts';

export const DEFAULT_VAGRANT_CLOUD_URL = 'https://vagrantcloud.com';

export interface VagrantCloudOptions {
  api: ApiClient;
  /** VAGRANT_CLOUD_URL or the default; with or without /api/v2. */
  baseUrl: string;
  token: string | undefined;
  owner: string;
  boxName: string;
  description: string;
  version: string;
  versionDescription: string;
  log: (line: string) => void;
}

interface ProviderRecord {
  name?: string;
  checksum?: string | null;
  checksum_type?: string | null;
  architecture?: string;
}

export class VagrantCloudRegistry implements HostedRegistry {
  readonly label: string;
  readonly destination: string;
  private readonly origin: string;
  private readonly api: ApiClient;

  constructor(private readonly options: VagrantCloudOptions) {
    this.api = options.api;
    this.origin = normalizeBaseUrl(options.baseUrl);
    this.label = `Vagrant Cloud (${this.origin})`;
    this.destination = `vagrant-cloud ${this.origin} ${options.owner}/${options.boxName}`;
  }

  private get boxUrl(): string {
    return `${this.origin}/api/v2/box/${encodeURIComponent(this.options.owner)}/${encodeURIComponent(this.options.boxName)}`;
  }

  private get versionUrl(): string {
    return `${this.boxUrl}/version/${encodeURIComponent(this.options.version)}`;
  }

  private providerUrl(artifact: BoxArtifact): string {
    return `${this.versionUrl}/provider/${encodeURIComponent(artifact.provider)}/${encodeURIComponent(artifact.architecture)}`;
  }

  async authenticate(): Promise<void> {
    if (this.options.token) return;
    const why = 'VAGRANT_CLOUD_TOKEN is not set: create an API token in Vagrant Cloud (or HCP) and export it';
    if (!this.api.dryRun) throw new PublishError(why);
    this.options.log(`[dry run] ${why}; a real run would stop here`);
  }

  async ensureBox(): Promise<void> {
    const read = () => this.api.send({ method: 'GET', url: this.boxUrl, auth: true, what: 'read the box', accept: [404], assume: { status: 404, body: {} } });
    let found;
    try {
      found = await read();
    } catch (error) {
      // The first request: where a wrong or expired token shows.
      if (error instanceof ApiResponseError && error.statusCode === 401) throw new PublishError(`${error.message}; Vagrant Cloud refused the token: check VAGRANT_CLOUD_TOKEN`);
      throw error;
    }
    if (found.status !== 404) return;
    const { owner, boxName, description } = this.options;
    await createOrFindExisting(
      this.api,
      {
        method: 'POST',
        url: `${this.origin}/api/v2/boxes`,
        auth: true,
        what: `create the box ${owner}/${boxName}`,
        json: { box: { username: owner, name: boxName, short_description: description, description, is_private: false } },
        assume: { status: 201, body: {} },
        note: '(only when the box does not exist)',
      },
      read,
    );
  }

  async ensureVersion(): Promise<RemoteVersionState> {
    const response = await readOrCreateVersion(this.api, {
      versionUrl: this.versionUrl,
      createUrl: `${this.boxUrl}/versions`,
      version: this.options.version,
      json: { version: { version: this.options.version, description: this.options.versionDescription } },
      assumeCreated: { status: 201, body: { version: this.options.version, status: 'unreleased' } },
    });
    const status = (response.body as { status?: unknown }).status;
    if (status === 'unreleased') return 'unreleased';
    if (status === 'active') return 'released';
    return typeof status === 'string' ? status : 'in an unknown state';
  }

  async readProvider(artifact: BoxArtifact): Promise<RemoteProvider> {
    const response = await this.api.send({
      method: 'GET',
      url: this.providerUrl(artifact),
      auth: true,
      what: `read provider ${artifact.provider} (${artifact.architecture})`,
      accept: [404],
      assume: { status: 404, body: {} },
    });
    if (response.status === 404) return { exists: false };
    return { exists: true, ...sha256Of(response.body as ProviderRecord) };
  }

  async saveProvider(artifact: BoxArtifact, remote: RemoteProvider): Promise<void> {
    const provider = {
      name: artifact.provider,
      checksum: artifact.sha256,
      checksum_type: 'sha256',
      architecture: artifact.architecture,
      default_architecture: true,
    };
    if (remote.exists) {
      await this.api.send({ method: 'PUT', url: this.providerUrl(artifact), auth: true, what: `update provider ${artifact.provider}`, json: { provider }, assume: { status: 200, body: provider } });
      return;
    }
    await createOrFindExisting(
      this.api,
      { method: 'POST', url: `${this.versionUrl}/providers`, auth: true, what: `create provider ${artifact.provider}`, json: { provider }, assume: { status: 201, body: provider } },
      () => this.api.send({ method: 'GET', url: this.providerUrl(artifact), auth: true, what: `read provider ${artifact.provider}`, accept: [404], assume: { status: 404, body: {} } }),
    );
  }

  async requestUpload(artifact: BoxArtifact): Promise<UploadTarget> {
    const response = await this.api.send({
      method: 'GET',
      url: `${this.providerUrl(artifact)}/upload/direct`,
      auth: true,
      what: `prepare the upload of ${artifact.provider}`,
      assume: { status: 200, body: { upload_path: 'https://storage.invalid/UPLOAD-PATH', callback: `${this.providerUrl(artifact)}/upload/direct/UPLOAD-ID` } },
    });
    const { upload_path: uploadPath, callback } = response.body as { upload_path?: unknown; callback?: unknown };
    if (typeof uploadPath !== 'string' || typeof callback !== 'string') {
      throw new PublishError(`Vagrant Cloud answered the upload request for ${artifact.provider} without upload_path and callback`);
    }
    return {
      url: uploadPath,
      complete: async () => {
        await this.api.send({ method: 'PUT', url: this.onApiOrigin(callback), auth: true, what: `complete the upload of ${artifact.provider}`, assume: { status: 200, body: {} } });
      },
    };
  }

  async verifyProvider(artifact: BoxArtifact): Promise<string | undefined> {
    const response = await this.api.send({
      method: 'GET',
      url: this.providerUrl(artifact),
      auth: true,
      what: `read back provider ${artifact.provider}`,
      assume: { status: 200, body: { checksum: artifact.sha256, checksum_type: 'sha256' } },
    });
    const { sha256 } = sha256Of(response.body as ProviderRecord);
    if (sha256 !== artifact.sha256) return `Vagrant Cloud has checksum ${sha256 ?? 'none'} for ${artifact.provider} (${artifact.architecture}), not ${artifact.sha256}`;
    return undefined;
  }

  async release(): Promise<void> {
    await this.api.send({ method: 'PUT', url: `${this.versionUrl}/release`, auth: true, what: `release version ${this.options.version}`, assume: { status: 200, body: {} } });
  }

  /**
   * The callback URL comes from the API's answer; the token goes only to the configured API's
   * origin, so only the callback's path is used (as Vagrant's own client does).
   */
  private onApiOrigin(url: string): string {
    const parsed = new URL(url, this.origin);
    return `${this.origin}${parsed.pathname}${parsed.search}`;
  }
}

function sha256Of(record: ProviderRecord): { sha256?: string } {
  if (typeof record.checksum !== 'string' || record.checksum_type?.toLowerCase() !== 'sha256') return {};
  return { sha256: record.checksum.toLowerCase() };
}

/** `https://vagrantcloud.com/api/v2/` → `https://vagrantcloud.com` */
export function normalizeBaseUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/api\/v2$/, '');
}
