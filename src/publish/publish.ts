// `publish:box`: from the boxes a build made and the smoke test passed to a place users get them
// from. This module decides what is published (publishable boxes, verified byte for byte against
// their build records) and hands it to the target: a static catalog tree, Vagrant Cloud or HCP.
// The nightly run calls publishBox as its last stage.
import path from 'node:path';
import { loadDefinition } from '../definitions/load.ts';
import { displayPath } from '../definitions/errors.ts';
import { REPO_ROOT } from '../render/render.ts';
import { ApiClient, DEFAULT_API_NETWORK_SETTINGS, type ApiNetworkSettings } from './api-client.ts';
import { collectBuiltVersion, verifyArtifact, type BuiltVersion } from './artifacts.ts';
import { ApiResponseError, PublishError, ServiceClosedError } from './errors.ts';
import { DEFAULT_HCP_API_URL, DEFAULT_HCP_AUTH_URL, HcpAccessToken, HcpRegistry } from './hcp.ts';
import { publishToRegistry, type HostedRegistry } from './hosted.ts';
import type { PublishReport } from './report.ts';
import { displayUrl, Redactor, redactorFor } from './secrets.ts';
import { DEFAULT_KEEP, publishToStaticTree } from './static-target.ts';
import { publishToRcloneRemote } from './rclone-target.ts';
import { outputDirectories } from '../run-settings.ts';
import { formatTarget, type PublishTarget } from './target.ts';
import { targetUsage } from './usage.ts';
import { DEFAULT_VAGRANT_CLOUD_URL, VagrantCloudRegistry } from './vagrant-cloud.ts';

export interface PublishOptions {
  /** The definition's name: `ubuntu-14.04`. */
  box: string;
  target: PublishTarget;
  /** Default: the newest version built. */
  version?: string;
  /** Where builds put boxes: BOXSMITH_BOXES or <repo>/boxes (see boxesRoot). */
  boxesDir: string;
  definitionsDir?: string;
  dryRun?: boolean;
  /** Static target: how many versions the catalog keeps (default 3). */
  keep?: number;
  /** Publish boxes whose smoke test did not pass, with a warning line for each. */
  allowUntested?: boolean;
  /** Tokens, secrets and API URLs (VAGRANT_CLOUD_TOKEN, VAGRANT_CLOUD_URL, HCP_*). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  network?: Partial<ApiNetworkSettings>;
  /** rclone targets: the logs root rclone's output goes to (default BOXSMITH_LOGS or <repo>/logs). */
  logsDir?: string;
  /** Progress and warnings, one line each, secrets already blanked out. Default: stdout. */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** The boxes root builds write to: BOXSMITH_BOXES, else <repo>/boxes. */
export function boxesRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.BOXSMITH_BOXES ?? path.join(REPO_ROOT, 'boxes'));
}

/**
 * A registry's base URL from the environment: https, since the token travels with every request;
 * plain http only to this machine's loopback (a local stand-in or proxy).
 */
export function apiBaseUrl(variable: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PublishError(`${variable} is not a URL: ${displayUrl(value)}`);
  }
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && loopback)) return value;
  throw new PublishError(`${variable}=${displayUrl(value)} must be an https:// URL (the token would travel in clear); http:// is allowed to loopback only`);
}

/**
 * Publishes one version of a box. Resolves to a report (`ok: false` when a provider failed:
 * nothing was released then); throws PublishError when nothing could be published at all.
 * Messages and reports never contain a token or secret.
 */
export async function publishBox(options: PublishOptions): Promise<PublishReport> {
  const env = options.env ?? process.env;
  const redactor = redactorFor(env);
  if (options.target.kind === 'rclone') for (const secret of options.target.remote.secrets) redactor.add(secret);
  const print = options.log ?? ((line: string) => console.log(line));
  const log = (line: string) => print(redactor.redact(line));
  try {
    const report = await publish(options, env, redactor, log);
    for (const outcome of report.outcomes) outcome.detail = redactor.redact(outcome.detail);
    if (report.resume) report.resume = redactor.redact(report.resume);
    report.usage = targetUsage(options.target, report.name);
    return report;
  } catch (error) {
    // A message may quote an API's answer: blank out secrets before it leaves.
    if (error instanceof ServiceClosedError) throw new ServiceClosedError(redactor.redact(error.message));
    if (error instanceof PublishError) throw new PublishError(redactor.redact(error.message));
    if (error instanceof ApiResponseError) throw new ApiResponseError(redactor.redact(error.message), error.statusCode);
    throw error;
  }
}

async function publish(options: PublishOptions, env: NodeJS.ProcessEnv, redactor: Redactor, log: (line: string) => void): Promise<PublishReport> {
  const { definition } = loadDefinition(options.box, options.definitionsDir);
  const built = collectBuiltVersion({
    boxesDir: options.boxesDir,
    org: definition.org,
    boxName: definition.box_name,
    ...(options.version ? { version: options.version } : {}),
    arch: definition.os.arch,
    allowUntested: options.allowUntested ?? false,
  });
  for (const warning of built.warnings) log(warning);
  if (!built.artifacts.length) {
    throw new PublishError(
      `nothing to publish for ${built.name} ${built.version}: ${built.skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ') || 'no boxes'}`,
    );
  }
  for (const artifact of built.artifacts) {
    log(`verifying ${displayPath(artifact.file)} (${(artifact.size / 1048576).toFixed(1)} MiB) against its build record`);
    await verifyArtifact(artifact, options.signal);
  }

  const dryRun = options.dryRun ?? false;
  const target = options.target;
  if (target.kind === 'static') {
    return publishToStaticTree({
      root: target.root,
      ...(target.baseUrl ? { baseUrl: target.baseUrl } : {}),
      built,
      description: definition.description,
      keep: options.keep ?? DEFAULT_KEEP,
      dryRun,
      log,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  if (target.kind === 'rclone') {
    return publishToRcloneRemote({
      remote: target.remote,
      baseUrl: target.baseUrl,
      built,
      description: definition.description,
      keep: options.keep ?? DEFAULT_KEEP,
      dryRun,
      log,
      logsDir: options.logsDir ?? outputDirectories(env).logsDir,
      redactor,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  const settings: ApiNetworkSettings = { ...DEFAULT_API_NETWORK_SETTINGS, ...options.network };
  let bearer: () => Promise<string>;
  const api = new ApiClient({
    settings,
    redactor,
    log,
    dryRun,
    bearer: () => bearer(),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const versionDescription = describeVersion(built);
  let registry: HostedRegistry;
  if (target.kind === 'vagrant-cloud') {
    const token = env.VAGRANT_CLOUD_TOKEN || undefined;
    bearer = async () => token ?? '';
    registry = new VagrantCloudRegistry({
      api,
      baseUrl: apiBaseUrl('VAGRANT_CLOUD_URL', env.VAGRANT_CLOUD_URL || DEFAULT_VAGRANT_CLOUD_URL),
      token,
      owner: target.owner ?? definition.org,
      boxName: definition.box_name,
      description: definition.description,
      version: built.version,
      versionDescription,
      log,
    });
  } else {
    const credentials = {
      clientId: env.HCP_CLIENT_ID || undefined,
      clientSecret: env.HCP_CLIENT_SECRET || undefined,
      authUrl: apiBaseUrl('HCP_AUTH_URL', env.HCP_AUTH_URL || DEFAULT_HCP_AUTH_URL),
      ...(env.HCP_TOKEN_PATH ? { tokenPath: env.HCP_TOKEN_PATH } : {}),
    };
    const token = new HcpAccessToken(() => api, credentials, redactor);
    bearer = () => token.get();
    registry = new HcpRegistry({
      api,
      token,
      credentials,
      apiUrl: apiBaseUrl('HCP_API_URL', env.HCP_API_URL || DEFAULT_HCP_API_URL),
      registry: target.registry ?? definition.org,
      boxName: definition.box_name,
      description: definition.description,
      version: built.version,
      versionDescription,
      log,
      maxPollDelayMs: settings.maxRetryDelayMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
  const resumeCommand = `npm run publish:box -- ${options.box} --to ${formatTarget(target)} --version ${built.version}${options.allowUntested ? ' --allow-untested' : ''}`;
  return publishToRegistry(registry, built, { api, settings, log, resumeCommand, ...(options.signal ? { signal: options.signal } : {}) });
}

/** The version's description on a registry: where it came from. */
function describeVersion(built: BuiltVersion): string {
  const record = built.artifacts[0]!.record;
  return `Built by boxsmith from ${record.git_revision} with Packer ${record.packer_version} on ${record.built_at}.`;
}
