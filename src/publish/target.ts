// Where `--to` publishes: a static catalog tree (local, or on any storage rclone reaches), Vagrant
// Cloud, or an HCP Vagrant box registry.
import path from 'node:path';
import { PublishUsageError } from './errors.ts';
import { parseRcloneRemote, type RcloneRemote } from './rclone-remote.ts';

export type PublishTarget =
  /** A directory tree of catalogs and boxes for any static web server (or file:// URLs). */
  | { kind: 'static'; root: string; baseUrl?: string }
  /** The same catalog tree on an rclone remote (S3, GCS, Azure Blob, B2, SFTP, WebDAV, ...), served from base-url. */
  | { kind: 'rclone'; remote: RcloneRemote; baseUrl: string }
  /** Vagrant Cloud's API v2; `owner` defaults to the definition's org. */
  | { kind: 'vagrant-cloud'; owner?: string }
  /** HCP Vagrant Box Registry; `registry` defaults to the definition's org. */
  | { kind: 'hcp'; registry?: string };

export const TARGET_SYNTAX = 'static:DIR[,base-url=URL], rclone:REMOTE:PATH,base-url=URL, vagrant-cloud[:OWNER] or hcp[:REGISTRY]';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function parseTarget(text: string, cwd = process.cwd()): PublishTarget {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? undefined : text.slice(colon + 1);
  switch (kind) {
    case 'static': {
      if (!rest) throw new PublishUsageError(`--to static needs a directory: static:DIR[,base-url=URL]`);
      const [dir = '', ...options] = rest.split(',');
      if (!dir) throw new PublishUsageError(`--to static needs a directory: static:DIR[,base-url=URL]`);
      const target: PublishTarget = { kind: 'static', root: path.resolve(cwd, dir) };
      for (const option of options) {
        const [key, ...value] = option.split('=');
        if (key !== 'base-url' || !value.length) throw new PublishUsageError(`unknown static target option "${option}" (known: base-url=URL)`);
        target.baseUrl = parseBaseUrl(value.join('='));
      }
      return target;
    }
    case 'rclone': {
      const usage = 'rclone:REMOTE:PATH,base-url=URL (REMOTE: a remote of your rclone config, or a connection string such as :sftp,host=H,user=U)';
      if (!rest) throw new PublishUsageError(`--to rclone needs a remote: ${usage}`);
      const { remote, options } = parseRcloneRemote(rest, usage);
      let baseUrl: string | undefined;
      for (const option of options) {
        const [key, ...value] = option.split('=');
        if (key !== 'base-url' || !value.length) throw new PublishUsageError(`unknown rclone target option "${option}" (known: base-url=URL)`);
        baseUrl = parseBaseUrl(value.join('='));
      }
      // The catalog names its boxes by URL, and a remote has no URL of its own that boxsmith could know.
      if (!baseUrl) throw new PublishUsageError(`--to rclone needs base-url=URL, where the remote's PATH is served: ${usage}`);
      return { kind: 'rclone', remote, baseUrl };
    }
    case 'vagrant-cloud':
    case 'hcp': {
      if (rest !== undefined && !NAME.test(rest)) throw new PublishUsageError(`"${rest}" is not a ${kind === 'hcp' ? 'registry' : 'user or organization'} name`);
      if (kind === 'hcp') return rest ? { kind, registry: rest } : { kind };
      return rest ? { kind, owner: rest } : { kind };
    }
    default:
      throw new PublishUsageError(`unknown target "${text}" (one of ${TARGET_SYNTAX})`);
  }
}

function parseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PublishUsageError(`base-url "${text}" is not a URL`);
  }
  if (!['http:', 'https:', 'file:'].includes(url.protocol)) throw new PublishUsageError(`base-url "${text}" must be an http, https or file URL`);
  if (url.search || url.hash) throw new PublishUsageError(`base-url "${text}" must not have a query or fragment`);
  return url.href.replace(/\/+$/, '');
}

export function describeTarget(target: PublishTarget): string {
  switch (target.kind) {
    case 'static':
      return `static:${target.root}${target.baseUrl ? ` (base URL ${target.baseUrl})` : ''}`;
    case 'rclone':
      return `rclone:${target.remote.shown} (base URL ${target.baseUrl})`;
    case 'vagrant-cloud':
      return 'Vagrant Cloud';
    case 'hcp':
      return 'HCP Vagrant Box Registry';
  }
}

/** The `--to` text that names this target again (for the resume command). */
export function formatTarget(target: PublishTarget): string {
  switch (target.kind) {
    case 'static':
      return `static:${target.root}${target.baseUrl ? `,base-url=${target.baseUrl}` : ''}`;
    case 'rclone':
      return `rclone:${target.remote.shown},base-url=${target.baseUrl}`;
    case 'vagrant-cloud':
      return target.owner ? `vagrant-cloud:${target.owner}` : 'vagrant-cloud';
    case 'hcp':
      return target.registry ? `hcp:${target.registry}` : 'hcp';
  }
}
