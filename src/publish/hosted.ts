// Publishing to a hosted registry (Vagrant Cloud, HCP Vagrant Box Registry), one flow for both:
//
//   box (created if missing) -> version (created unreleased if missing)
//   -> per provider: record with checksum and architecture, direct upload (upload URL, PUT,
//      callback), read back and compare
//   -> release, only once every provider got through.
//
// A failure leaves the version unreleased, so users never see half of it, and names the provider
// that failed; running the same command again resumes: providers uploaded and verified before
// (the journal beside the box says which) are not uploaded again.
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryableUploadFailure, type ApiClient, type ApiNetworkSettings, type ApiRequest, type ApiResponse } from './api-client.ts';
import type { BoxArtifact, BuiltVersion } from './artifacts.ts';
import { ApiResponseError, PublishError, ServiceClosedError } from './errors.ts';
import { hasVerifiedUpload, recordVerifiedUpload } from './journal.ts';
import { startReport, type ProviderOutcome, type PublishReport } from './report.ts';

/** What a registry knows about one provider and architecture of the version. */
export interface RemoteProvider {
  exists: boolean;
  /** Lower-case hex SHA-256, when the record carries one. */
  sha256?: string;
}

export interface UploadTarget {
  /** Pre-signed storage URL: PUT the box here, without the token. */
  url: string;
  /** Tells the registry the upload is complete (the callback). */
  complete(): Promise<void>;
}

/** The version's release state once it exists: unreleased (publish into it), released, or another (revoked: refuse). */
export type RemoteVersionState = 'unreleased' | 'released' | (string & {});

export interface HostedRegistry {
  /** `Vagrant Cloud (https://vagrantcloud.com)` */
  readonly label: string;
  /** Registry, API and box: the key of verified uploads in the journal. */
  readonly destination: string;
  /** Checks the credentials are there (and fetches a token where the registry needs one). */
  authenticate(): Promise<void>;
  ensureBox(): Promise<void>;
  /** Creates the version (unreleased) if it does not exist; its state either way. */
  ensureVersion(): Promise<RemoteVersionState>;
  readProvider(artifact: BoxArtifact): Promise<RemoteProvider>;
  /** Creates the provider record (name, architecture, checksum), or updates the checksum of one there. */
  saveProvider(artifact: BoxArtifact, remote: RemoteProvider): Promise<void>;
  requestUpload(artifact: BoxArtifact): Promise<UploadTarget>;
  /** After the upload: what is wrong with the record the registry now has, or undefined. */
  verifyProvider(artifact: BoxArtifact): Promise<string | undefined>;
  release(): Promise<void>;
}

export interface HostedPublishContext {
  api: ApiClient;
  settings: ApiNetworkSettings;
  log: (line: string) => void;
  /** The command that runs this publish again (to resume it). */
  resumeCommand: string;
  signal?: AbortSignal;
}

export async function publishToRegistry(registry: HostedRegistry, built: BuiltVersion, context: HostedPublishContext): Promise<PublishReport> {
  const { api, log } = context;
  const dryRun = api.dryRun;
  const report = startReport(registry.label, built, dryRun);
  const skipped: ProviderOutcome[] = built.skipped.map((s) => ({ provider: s.provider, status: 'skipped', detail: s.reason }));

  if (dryRun) log(`[dry run] requests to ${registry.label} carry "Authorization: Bearer <token>" (not shown); uploads to storage carry none`);
  await registry.authenticate();
  await registry.ensureBox();
  const state = await registry.ensureVersion();
  if (state === 'released') {
    await checkReleasedVersion(registry, built, report);
    report.outcomes.push(...skipped);
    return report;
  }
  if (state !== 'unreleased') {
    throw new PublishError(`${built.name} ${built.version} is ${state} on ${registry.label}: it cannot be published again; publish a new version`);
  }

  const failed: string[] = [];
  const uploaded: string[] = [];
  for (const artifact of built.artifacts) {
    const label = `${artifact.provider} (${artifact.architecture})`;
    try {
      const outcome = await publishProvider(registry, built, artifact, context);
      report.outcomes.push(outcome);
      uploaded.push(label);
    } catch (error) {
      context.signal?.throwIfAborted();
      // A closed registry fails every provider the same way: stop here, send nothing more.
      if (error instanceof ServiceClosedError) throw error;
      const message = api.redact(error instanceof Error ? error.message : String(error));
      log(`${label} failed: ${message}`);
      report.outcomes.push({ provider: artifact.provider, architecture: artifact.architecture, status: 'failed', detail: message });
      failed.push(label);
    }
  }
  report.outcomes.push(...skipped);
  if (failed.length) {
    report.resume =
      `${built.name} ${built.version} was NOT released on ${registry.label} (it stays unreleased, invisible to users): ${failed.join(', ')} failed. ` +
      `Fix the cause and resume with: ${context.resumeCommand}` +
      (uploaded.length ? ` (already uploaded and verified, not sent again: ${uploaded.join(', ')})` : '');
    return report;
  }
  try {
    await registry.release();
  } catch (error) {
    context.signal?.throwIfAborted();
    if (error instanceof ServiceClosedError) throw error;
    throw new PublishError(
      `every box of ${built.name} ${built.version} is uploaded and verified on ${registry.label}, but releasing it failed: ${api.redact((error as Error).message)}. ` +
        `It stays unreleased; release it with: ${context.resumeCommand} (nothing is uploaded again)`,
    );
  }
  report.released = !dryRun;
  report.ok = true;
  return report;
}

/** A released version is never changed: it is fine only when it already holds exactly these boxes. */
async function checkReleasedVersion(registry: HostedRegistry, built: BuiltVersion, report: PublishReport): Promise<void> {
  const differing: string[] = [];
  for (const artifact of built.artifacts) {
    const remote = await registry.readProvider(artifact);
    const label = `${artifact.provider} (${artifact.architecture})`;
    if (remote.exists && remote.sha256 === artifact.sha256) {
      report.outcomes.push({ provider: artifact.provider, architecture: artifact.architecture, status: 'unchanged', detail: 'already released with this checksum' });
    } else {
      differing.push(remote.exists ? `${label} has sha256 ${remote.sha256 ?? 'none'} there` : `${label} is not in it`);
    }
  }
  if (differing.length) {
    throw new PublishError(
      `${built.name} ${built.version} is already released on ${registry.label} and differs from these boxes (${differing.join('; ')}); ` +
        `a released version is never changed: build and publish a new version`,
    );
  }
  report.released = true;
  report.ok = true;
}

async function publishProvider(registry: HostedRegistry, built: BuiltVersion, artifact: BoxArtifact, context: HostedPublishContext): Promise<ProviderOutcome> {
  const { api, log } = context;
  const label = `${artifact.provider} (${artifact.architecture})`;
  const journalEntry = { destination: registry.destination, version: built.version, architecture: artifact.architecture, sha256: artifact.sha256 };
  const remote = await registry.readProvider(artifact);
  const outcome = { provider: artifact.provider, architecture: artifact.architecture };
  if (!api.dryRun && remote.exists && remote.sha256 === artifact.sha256 && hasVerifiedUpload(built.dir, artifact.provider, journalEntry)) {
    log(`${label}: already uploaded and verified, not sent again`);
    return { ...outcome, status: 'unchanged', detail: 'uploaded and verified by an earlier run' };
  }
  await registry.saveProvider(artifact, remote);
  await uploadWithRetries(registry, artifact, label, context);
  const problem = await registry.verifyProvider(artifact);
  if (problem) throw new PublishError(`the upload did not verify: ${problem}`);
  if (api.dryRun) return { ...outcome, status: 'planned', detail: `${artifact.file} (${artifact.size} bytes)` };
  await recordVerifiedUpload(built.dir, artifact.provider, journalEntry);
  log(`${label}: uploaded and verified (sha256 ${artifact.sha256})`);
  return { ...outcome, status: 'published', detail: `sha256 ${artifact.sha256}` };
}

/** Upload URL, PUT, callback; a stalled or broken PUT is tried again with a new upload URL. */
async function uploadWithRetries(registry: HostedRegistry, artifact: BoxArtifact, label: string, context: HostedPublishContext): Promise<void> {
  const { api, settings, log } = context;
  for (let attempt = 1; ; attempt++) {
    const target = await registry.requestUpload(artifact);
    try {
      await api.uploadFile(target.url, artifact.file, artifact.size, label);
    } catch (error) {
      context.signal?.throwIfAborted();
      if (!isRetryableUploadFailure(error) || attempt >= settings.uploadAttempts) throw error;
      const delayMs = Math.min(1000 * 2 ** (attempt - 1), settings.maxRetryDelayMs);
      log(`${(error as Error).message}; trying again with a new upload URL in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${settings.uploadAttempts})`);
      await sleep(delayMs, undefined, context.signal ? { signal: context.signal } : {});
      continue;
    }
    await target.complete();
    return;
  }
}

/**
 * Creates a record; a create that meets a conflict (its first answer was lost and got retried it,
 * or another publish was quicker) reads what is there instead.
 */
export async function createOrFindExisting(api: ApiClient, create: ApiRequest, read: () => Promise<ApiResponse>): Promise<ApiResponse> {
  try {
    return await api.send(create);
  } catch (error) {
    if (!(error instanceof ApiResponseError) || error.statusCode < 400 || error.statusCode >= 500) throw error;
    const existing = await read();
    if (existing.status === 404) throw error;
    return existing;
  }
}

/**
 * The version's record: read at `versionUrl`, created (unreleased) by POSTing `json` to
 * `createUrl` when missing. `assumeCreated` is what a dry run takes the create's answer to be.
 */
export async function readOrCreateVersion(
  api: ApiClient,
  request: { versionUrl: string; createUrl: string; version: string; json: unknown; assumeCreated: ApiResponse },
): Promise<ApiResponse> {
  const { versionUrl, createUrl, version } = request;
  const read = () => api.send({ method: 'GET', url: versionUrl, auth: true, what: `read version ${version}`, accept: [404], assume: { status: 404, body: {} } });
  const response = await read();
  if (response.status !== 404) return response;
  return createOrFindExisting(
    api,
    { method: 'POST', url: createUrl, auth: true, what: `create version ${version}`, json: request.json, assume: request.assumeCreated, note: '(only when the version does not exist)' },
    read,
  );
}
