// What a build and a publish write, run as users run them (the CLI) with registry secrets in the
// environment and `umask 000`: no file holds a secret in any form, nothing is group- or
// world-writable. The build uses the stand-in packer, the publish the registry stand-in.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildSandbox } from './build-sandbox.ts';
import { CLI, REPO_ROOT } from './helpers.ts';
import { HCP_CLIENT_ID, HCP_CLIENT_SECRET, RegistryStandIn } from './publish/registry-stand-in.ts';

const VAGRANT_CLOUD_TOKEN = 'vc-token-files-test-0123456789';

/** boxsmith's CLI under `umask 000`, without blocking this process (the registry stand-in lives here). */
function boxsmithUmask000(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, '--import', 'tsx', CLI, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (status) => resolve({ status, output }));
  });
}

function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((name) => path.join(dir, name));
}

/** Forms a secret takes in text: raw, URL/form encoded, base64. */
function secretForms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2), Buffer.from(secret).toString('base64')];
}

describe('a build and a publish with secrets set and umask 000 (stand-in packer, registry stand-in)', () => {
  const sandbox = buildSandbox('boxsmith-security-files-');
  let standIn: RegistryStandIn;
  let secrets: Record<string, string>;
  const results: { status: number | null; output: string }[] = [];

  before(async () => {
    standIn = await RegistryStandIn.start();
    secrets = { VAGRANT_CLOUD_TOKEN, HCP_CLIENT_ID, HCP_CLIENT_SECRET };
    const env = {
      ...sandbox.env,
      ...secrets,
      HCP_API_URL: standIn.origin,
      HCP_AUTH_URL: standIn.origin,
      BOXSMITH_REPORTS: path.join(sandbox.root, 'reports'),
    };
    results.push(await boxsmithUmask000(['build', 'standin', '--version', '1.0.0', '--no-apt-cache', '--no-test'], env));
    results.push(await boxsmithUmask000(['publish', 'standin', '--to', 'hcp', '--version', '1.0.0', '--allow-untested'], env));
  });
  after(() => standIn.close());

  it('both succeed', () => {
    for (const result of results) assert.equal(result.status, 0, result.output);
  });

  it('no file they wrote, and nothing they printed, holds a secret', () => {
    const files = filesBelow(sandbox.root).filter((file) => lstatSync(file).isFile());
    assert.ok(files.some((file) => file.endsWith('.box')) && files.some((file) => file.endsWith('.log')), files.join('\n'));
    const forms = Object.values(secrets).flatMap(secretForms).concat(standIn.issuedTokens);
    for (const file of files) {
      const content = readFileSync(file, 'latin1');
      for (const form of forms) assert.ok(!content.includes(form), `${file} holds a secret`);
    }
    for (const result of results) for (const form of forms) assert.ok(!result.output.includes(form), 'printed a secret');
  });

  it('nothing they wrote is group- or world-writable', () => {
    const written = readdirSync(sandbox.root).filter((name) => name !== 'definitions' && !name.endsWith('.iso'));
    assert.ok(written.includes('boxes') && written.includes('logs'), written.join(' '));
    for (const folder of written) {
      for (const file of filesBelow(path.join(sandbox.root, folder)).concat(path.join(sandbox.root, folder))) {
        const stat = lstatSync(file, { throwIfNoEntry: false });
        if (!stat || stat.isSymbolicLink()) continue;
        assert.equal(stat.mode & 0o022, 0, `${file} is mode ${(stat.mode & 0o777).toString(8)}`);
      }
    }
  });
});
