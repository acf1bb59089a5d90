// Tokens and client secrets must never reach a log, an error message or a report. Everything the
// publish code prints goes through a Redactor that knows every secret of the run, so a secret that
// sneaks into text (an error body echoing a header, a pre-signed URL in a message) is blanked out.

export const REDACTED = '[redacted]';

export class Redactor {
  private readonly secrets = new Set<string>();

  /**
   * Registers a secret in every form a request or an echoing error body may carry it: raw,
   * encodeURIComponent (query strings), form encoding (URLSearchParams: space as +, ~!'() escaped),
   * JSON-escaped, and base64 (basic auth: `id:secret` at any alignment).
   */
  add(secret: string | undefined): void {
    // Very short values would blank out ordinary words; real tokens are long.
    if (!secret || secret.length < 6) return;
    for (const form of [
      secret,
      encodeURIComponent(secret),
      new URLSearchParams({ s: secret }).toString().slice('s='.length),
      JSON.stringify(secret).slice(1, -1),
      ...base64Forms(secret),
    ]) {
      if (form.length >= 6) this.secrets.add(form);
    }
  }

  redact(text: string): string {
    let result = text;
    // Longest first, so a secret containing another is replaced whole.
    for (const secret of [...this.secrets].sort((a, b) => b.length - a.length)) {
      result = result.split(secret).join(REDACTED);
    }
    return result;
  }
}

/**
 * The base64 text that encodes `secret` inside any longer text, for each of the three byte
 * alignments: the characters that depend on the bytes before or after it are left out.
 */
function base64Forms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [0, 1, 2].map((offset) => {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const start = offset === 0 ? 0 : 4;
    const end = Math.floor((offset + bytes.length) / 3) * 4;
    return encoded.slice(start, end);
  });
}

/**
 * A URL as it may be shown: without user info and without its query string, where pre-signed
 * storage URLs carry their signatures (`?X-Amz-Signature=…`).
 */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const query = parsed.search ? '?…' : '';
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}${query}`;
  } catch {
    return '<an invalid URL>';
  }
}

/** Every secret publishing may meet, so that none of them is ever printed. */
export function redactorFor(env: NodeJS.ProcessEnv): Redactor {
  const redactor = new Redactor();
  for (const name of ['VAGRANT_CLOUD_TOKEN', 'HCP_CLIENT_SECRET', 'HCP_CLIENT_ID', 'ATLAS_TOKEN']) redactor.add(env[name]);
  return redactor;
}
