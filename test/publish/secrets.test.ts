// A secret is redacted in every form it can take in a request: raw, encodeURIComponent, form
// encoding (URLSearchParams differs on ~ ! ' ( ) and space), JSON-escaped, base64 in basic auth;
// end to end through a dry run and through a 401 that echoes the whole request back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { apiBaseUrl, publishBox } from '../../src/publish/publish.ts';
import { formatReport } from '../../src/publish/report.ts';
import { Redactor } from '../../src/publish/secrets.ts';
import { parseTarget } from '../../src/publish/target.ts';
import { BOX, writeBuild } from './helpers.ts';

const SECRET = "s3cr~t!'(x) y+z/é\"\\w=";
const ID = 'client-id-0123';

/** Every form SECRET can take in a request or in an error body that echoes one. */
function forms(secret: string): Record<string, string> {
  return {
    raw: secret,
    encodeURIComponent: encodeURIComponent(secret),
    form: new URLSearchParams({ s: secret }).toString().slice(2),
    json: JSON.stringify(secret).slice(1, -1),
    basicAuth: Buffer.from(`${ID}:${secret}`).toString('base64'),
  };
}

function assertRedacted(text: string): void {
  for (const [name, form] of Object.entries(forms(SECRET))) {
    assert.ok(!text.includes(form), `the ${name} form of the secret is shown:\n${text}`);
  }
  // A base64 form with the secret at each alignment: the secret's own characters are blanked.
  for (const prefix of ['', 'a', 'ab']) {
    const encoded = Buffer.from(`${prefix}${SECRET}`).toString('base64');
    assert.ok(!text.includes(encoded.slice(4, -4)), `base64 (${prefix.length}) shown:\n${text}`);
  }
}

describe('Redactor', () => {
  const redactor = new Redactor();
  redactor.add(SECRET);
  redactor.add(ID);

  it('blanks each form of the secret inside other text', () => {
    for (const [name, form] of Object.entries(forms(SECRET))) {
      const redacted = redactor.redact(`before ${form} after`);
      assert.ok(!redacted.includes(form), name);
      assert.match(redacted, /^before .*\[redacted\].* after$/, name);
    }
    for (const prefix of ['', 'a', 'ab', 'abc']) {
      const redacted = redactor.redact(Buffer.from(`${prefix}${SECRET}tail`).toString('base64'));
      assert.match(redacted, /\[redacted\]/, `base64 at offset ${prefix.length}`);
    }
    assertRedacted(redactor.redact(Object.values(forms(SECRET)).join(' | ')));
  });

  it('leaves text without a secret as it is', () => {
    assert.equal(redactor.redact('nothing secret (here) ~ !'), 'nothing secret (here) ~ !');
  });
});

describe('publish with a secret that form encoding changes', () => {
  let boxesDir: string;
  let echo: Server;
  let origin: string;
  before(async () => {
    boxesDir = mkdtempSync(path.join(tmpdir(), 'boxsmith-secrets-'));
    writeBuild(boxesDir, '1.0.0', { provider: 'libvirt' });
    // Answers every request with 401 and the request itself, as some gateways do.
    echo = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: `access_denied for ${request.url} ${JSON.stringify(request.headers)} ${Buffer.concat(chunks).toString()}` }));
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => echo.close(resolve));
    rmSync(boxesDir, { recursive: true, force: true });
  });

  const env = () => ({ HCP_CLIENT_ID: ID, HCP_CLIENT_SECRET: SECRET, HCP_API_URL: origin, HCP_AUTH_URL: origin });

  it('--dry-run prints the token request with the secret redacted', async () => {
    const lines: string[] = [];
    const report = await publishBox({ box: BOX, target: parseTarget('hcp'), boxesDir, env: env(), dryRun: true, log: (line) => lines.push(line) });
    const output = [...lines, formatReport(report)].join('\n');
    assert.match(output, /\[dry run\] POST/);
    assertRedacted(output);
  });

  it('a 401 echoing the request shows no form of the secret', async () => {
    const lines: string[] = [];
    let message = '';
    try {
      const report = await publishBox({ box: BOX, target: parseTarget('hcp'), boxesDir, env: env(), log: (line) => lines.push(line) });
      message = formatReport(report);
    } catch (error) {
      message = (error as Error).message;
    }
    assert.match(message, /401 .*access_denied for .*client_secret=\[redacted\]/);
    assertRedacted([...lines, message].join('\n'));
  });
});

describe('registry base URLs', () => {
  it('https anywhere, http to loopback only, anything else refused naming the variable', () => {
    for (const ok of ['https://api.cloud.hashicorp.com', 'http://127.0.0.1:8080', 'http://localhost:1/x', 'http://[::1]:9']) {
      assert.equal(apiBaseUrl('HCP_API_URL', ok), ok);
    }
    for (const bad of ['http://api.cloud.hashicorp.com', 'http://10.0.0.1', 'ftp://127.0.0.1', 'http://127.0.0.1.example.org', 'not a url']) {
      assert.throws(() => apiBaseUrl('VAGRANT_CLOUD_URL', bad), /^PublishError: VAGRANT_CLOUD_URL/);
    }
  });

  it('publish refuses an http:// registry before sending anything', async () => {
    const boxesDir = mkdtempSync(path.join(tmpdir(), 'boxsmith-url-'));
    writeBuild(boxesDir, '1.0.0', { provider: 'libvirt' });
    await assert.rejects(
      publishBox({ box: BOX, target: parseTarget('vagrant-cloud'), boxesDir, allowUntested: true, env: { VAGRANT_CLOUD_TOKEN: 'token-0123456789', VAGRANT_CLOUD_URL: 'http://vagrantcloud.com' }, log: () => {} }),
      /VAGRANT_CLOUD_URL=http:\/\/vagrantcloud\.com\/ must be an https:\/\/ URL/,
    );
    rmSync(boxesDir, { recursive: true, force: true });
  });
});
