// The remote of an `rclone:` target: a remote of the user's rclone config (`myremote:path`, read by
// rclone from RCLONE_CONFIG or its default file; boxsmith never writes that config) or an rclone
// connection string (`:sftp,host=H,user=U,key_file=K:path`). A connection string's parameters are
// handed to rclone as RCLONE_CONFIG_* variables of a remote named for the run, not on its command
// line, where every user of the host could read them (/proc/PID/cmdline); values that look like
// credentials are blanked out wherever boxsmith shows the target.
import { PublishUsageError } from './errors.ts';
import { REDACTED } from './secrets.ts';

export interface RcloneRemote {
  /** What rclone is given before the path: `myremote:` or `boxsmithtarget:`. */
  prefix: string;
  /** The folder on the remote, without a trailing `/` ('' for the remote's root; a leading `/` is absolute on SFTP). */
  path: string;
  /** A connection string's backend (sftp, s3, ...); unknown for a named remote. */
  backend?: string;
  /** Variables that configure the remote (a connection string's parameters); none for a named remote. */
  env: Record<string, string>;
  /** The target as it may be printed: credentials blanked out. */
  shown: string;
  /** The credential values, for the run's redactor. */
  secrets: string[];
}

/** The name the variables give a connection string's remote (RCLONE_CONFIG_BOXSMITHTARGET_TYPE, ...). */
const CONNECTION_REMOTE = 'boxsmithtarget';
const REMOTE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_. -]*$/;
const PARAMETER_KEY = /^[a-z][a-z0-9_]*$/;
const BACKEND = /^[a-z][a-z0-9]*$/;

/** Parameters whose values are credentials (pass, secret_access_key, token, sas_url, ...), but not paths to them. */
function isCredential(key: string): boolean {
  return /pass|secret|token|credential|sas_url|key/i.test(key) && !/_file$/.test(key);
}

/**
 * Splits `REMOTE:PATH[,option=value...]` (what follows `rclone:` in --to) into the remote and the
 * target's own options. A PATH cannot contain a comma (the options start at the first one).
 */
export function parseRcloneRemote(text: string, usage: string): { remote: RcloneRemote; options: string[] } {
  let head: string;
  let tail: string;
  if (text.startsWith(':')) {
    // `:backend,key=value,...:path`: the remote ends at the first `:` outside quotes.
    const end = endOfConnectionString(text);
    if (end < 0) throw new PublishUsageError(`the rclone connection string "${text}" has no ":" before its path: ${usage}`);
    head = text.slice(0, end);
    tail = text.slice(end + 1);
  } else {
    const colon = text.indexOf(':');
    if (colon <= 0) throw new PublishUsageError(`"${text}" names no rclone remote: ${usage}`);
    head = text.slice(0, colon);
    tail = text.slice(colon + 1);
  }
  const comma = tail.indexOf(',');
  const remotePath = (comma < 0 ? tail : tail.slice(0, comma)).replace(/(.)\/+$/, '$1');
  const options = comma < 0 ? [] : tail.slice(comma + 1).split(',').filter(Boolean);
  if (remotePath.split('/').some((segment) => segment === '..')) throw new PublishUsageError(`the rclone path "${remotePath}" must not contain ".."`);

  if (!head.startsWith(':')) {
    if (head.includes(',')) throw new PublishUsageError(`rclone remote "${head}": put a named remote's parameters in its rclone config, not in --to`);
    if (!REMOTE_NAME.test(head)) throw new PublishUsageError(`"${head}" is not an rclone remote name: ${usage}`);
    return { remote: { prefix: `${head}:`, path: remotePath, env: {}, shown: `${head}:${remotePath}`, secrets: [] }, options };
  }
  const [backend = '', ...parameters] = splitOutsideQuotes(head.slice(1));
  if (!BACKEND.test(backend)) throw new PublishUsageError(`"${backend}" is not an rclone backend name (sftp, s3, webdav, ...): ${usage}`);
  const prefix = `RCLONE_CONFIG_${CONNECTION_REMOTE.toUpperCase()}_`;
  const env: Record<string, string> = { [`${prefix}TYPE`]: backend };
  const shownParameters: string[] = [];
  const secrets: string[] = [];
  for (const parameter of parameters) {
    const equals = parameter.indexOf('=');
    const key = equals < 0 ? parameter : parameter.slice(0, equals);
    // rclone takes a bare key as `key=true`.
    const value = equals < 0 ? 'true' : unquote(parameter.slice(equals + 1));
    if (!PARAMETER_KEY.test(key)) throw new PublishUsageError(`"${key}" is not an rclone parameter name (in "${head}")`);
    env[`${prefix}${key.toUpperCase()}`] = value;
    if (isCredential(key)) {
      secrets.push(value);
      shownParameters.push(`${key}=${REDACTED}`);
    } else shownParameters.push(parameter);
  }
  const shown = `:${[backend, ...shownParameters].join(',')}:${remotePath}`;
  return { remote: { prefix: `${CONNECTION_REMOTE}:`, path: remotePath, backend, env, shown, secrets }, options };
}

function endOfConnectionString(text: string): number {
  let quote: string | undefined;
  for (let index = 1; index < text.length; index++) {
    const char = text[index]!;
    if (quote) {
      if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === ':') return index;
  }
  return -1;
}

function splitOutsideQuotes(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (const char of text) {
    if (quote) {
      if (char === quote) quote = undefined;
      current += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      current += char;
    } else if (char === ',') {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts;
}

function unquote(value: string): string {
  return /^(["']).*\1$/s.test(value) ? value.slice(1, -1) : value;
}

/** `prefix + path/relative`: what rclone is given for a file or folder of the target. */
export function remoteSpec(remote: RcloneRemote, relative = ''): string {
  const joined = [remote.path, relative].filter(Boolean).join('/');
  return `${remote.prefix}${joined}`;
}
