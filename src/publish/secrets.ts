// Tokens and client secrets must never reach a log, an error message or a report. Everything the
// publish code prints goes through a Redactor that knows every secret of the run, so a secret that
// sneaks into text (an error body echoing a header, a pre-signed URL in a message) is blanked out.

export const REDACTED = '[redacted]';

export class Redactor {
  private readonly secrets = new Set<string>();

  /** Registers a secret (and its URL-encoded form, as it appears in query strings and form bodies). */
  add(secret: string | undefined): void {
    // Very short values would blank out ordinary words; real tokens are long.
    if (!secret || secret.length < 6) return;
    this.secrets.add(secret);
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) this.secrets.add(encoded);
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
