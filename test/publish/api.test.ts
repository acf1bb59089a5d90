// Publishing to Vagrant Cloud and HCP against a local stand-in on 127.0.0.1 that implements their
// documented endpoints (test/publish/registry-stand-in.ts): the whole flow, retries of 5xx and of
// stalled uploads, a provider failing for good (nothing released), resuming, dry runs. No test
// here reaches the real services; every one asserts that no token or secret was printed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { closedAnswer, type ApiNetworkSettings } from '../../src/publish/api-client.ts';
import { PublishError, ServiceClosedError } from '../../src/publish/errors.ts';
import { publishBox, type PublishOptions } from '../../src/publish/publish.ts';
import { formatReport, type PublishReport } from '../../src/publish/report.ts';
import { parseTarget } from '../../src/publish/target.ts';
import { boxsmith, CLI, REPO_ROOT } from '../helpers.ts';
import { HCP_RETIREMENT_NOTE } from '../../src/publish/retirement.ts';
import { BOX, BOX_NAME, ORG, writeBuild, type BuiltBox } from './helpers.ts';
import { HCP_CLIENT_ID, HCP_CLIENT_SECRET, RegistryStandIn, VAGRANT_CLOUD_TOKEN } from './registry-stand-in.ts';

/** Fast failure detection: a stalled upload is given up after about a second. */
const FAST: Partial<ApiNetworkSettings> = {
  connectTimeoutMs: 2_000,
  responseTimeoutMs: 1_500,
  idleTimeoutMs: 1_000,
  retries: 2,
  maxRetryDelayMs: 20,
  uploadAttempts: 3,
  progressIntervalMs: 0,
};

const VERSION = '1.0.0';
const VC_VERSION_PATH = `/api/v2/box/${ORG}/${BOX_NAME}/version/${VERSION}`;
const HCP_VERSION_PATH = `/vagrant/2022-09-30/registry/${ORG}/box/${BOX_NAME}/version/${VERSION}`;

let standIn: RegistryStandIn;
let boxesDir: string;
let built: Record<'libvirt' | 'virtualbox', BuiltBox>;

beforeEach(async () => {
  standIn = await RegistryStandIn.start();
  boxesDir = mkdtempSync(path.join(tmpdir(), 'boxsmith-publish-api-'));
  built = { libvirt: writeBuild(boxesDir, VERSION, { provider: 'libvirt' }), virtualbox: writeBuild(boxesDir, VERSION, { provider: 'virtualbox' }) };
});
afterEach(async () => {
  await standIn.close();
  rmSync(boxesDir, { recursive: true, force: true });
});

function standInEnv(): NodeJS.ProcessEnv {
  return {
    VAGRANT_CLOUD_TOKEN,
    VAGRANT_CLOUD_URL: standIn.origin,
    HCP_CLIENT_ID,
    HCP_CLIENT_SECRET,
    HCP_API_URL: standIn.origin,
    HCP_AUTH_URL: standIn.origin,
  };
}

/** Every secret of a run: none may appear in anything printed or reported. */
function assertNoSecrets(text: string): void {
  for (const secret of [VAGRANT_CLOUD_TOKEN, HCP_CLIENT_SECRET, HCP_CLIENT_ID, ...standIn.issuedTokens, 'signature=presigned']) {
    assert.ok(!text.includes(secret), `output shows a secret (${secret.slice(0, 8)}…):\n${text}`);
  }
}

async function publish(target: string, extra: Partial<PublishOptions> = {}): Promise<{ report?: PublishReport; error?: Error; output: string }> {
  const lines: string[] = [];
  let report: PublishReport | undefined;
  let error: Error | undefined;
  try {
    report = await publishBox({ box: BOX, target: parseTarget(target), boxesDir, env: standInEnv(), network: FAST, log: (line) => lines.push(line), ...extra });
  } catch (caught) {
    error = caught as Error;
  }
  const output = [...lines, report ? formatReport(report) : '', error ? error.message : ''].join('\n');
  assertNoSecrets(output);
  return { ...(report ? { report } : {}), ...(error ? { error } : {}), output };
}

function storagePuts(): number {
  return standIn.seen.filter((r) => r.method === 'PUT' && r.path.startsWith('/storage/')).length;
}

/** The publish command as users run it, against the stand-in. */
function runPublish(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'publish', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, BOXSMITH_BOXES: boxesDir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('Vagrant Cloud API v2 (local stand-in)', () => {
  it('stand-in: creates the box, the version and each provider with checksum and architecture, uploads directly, releases last', async () => {
    const { report } = await publish('vagrant-cloud');
    assert.ok(report?.ok, 'the publish succeeded');
    assert.equal(report.released, true);
    const box = `/api/v2/box/${ORG}/${BOX_NAME}`;
    const provider = (name: string) => `${VC_VERSION_PATH}/provider/${name}/amd64`;
    const calls = standIn.apiCalls().map((call) => call.replace(/\/upload\/direct\/[0-9a-f]+$/, '/upload/direct/<id>'));
    assert.deepEqual(calls, [
      `GET ${box}`,
      'POST /api/v2/boxes',
      `GET ${VC_VERSION_PATH}`,
      `POST ${box}/versions`,
      ...['libvirt', 'virtualbox'].flatMap((name) => [
        `GET ${provider(name)}`,
        `POST ${VC_VERSION_PATH}/providers`,
        `GET ${provider(name)}/upload/direct`,
        `PUT ${provider(name)}/upload/direct/<id>`,
        `GET ${provider(name)}`,
      ]),
      `PUT ${VC_VERSION_PATH}/release`,
    ]);
    const created = standIn.seen.filter((r) => r.path.endsWith('/providers')).map((r) => JSON.parse(r.body) as { provider: Record<string, unknown> });
    assert.deepEqual(created[0]!.provider, { name: 'libvirt', checksum: built.libvirt.sha256, checksum_type: 'sha256', architecture: 'amd64', default_architecture: true });
    // The token goes to the API only, never to storage.
    for (const request of standIn.seen) {
      if (request.path.startsWith('/storage/')) assert.equal(request.authorization, undefined, 'no Authorization header on uploads');
      else assert.equal(request.authorization, `Bearer ${VAGRANT_CLOUD_TOKEN}`);
    }
    const version = standIn.box(ORG, BOX_NAME)!.versions.get(VERSION)!;
    assert.equal(version.status, 'active');
    assert.equal(version.providers.get('libvirt/amd64')!.uploadedSha256, built.libvirt.sha256);
    assert.equal(version.providers.get('virtualbox/amd64')!.uploadedSha256, built.virtualbox.sha256);
  });

  it('stand-in: a 503 from the API is retried with back-off, then the publish goes on', async () => {
    standIn.fail({ method: 'POST', path: /\/versions$/, times: 1, action: { status: 503, body: { errors: ['try later'] } } });
    standIn.fail({ method: 'GET', path: /\/provider\/libvirt\/amd64\/upload\/direct$/, times: 1, action: { status: 503 } });
    const { report, output } = await publish('vagrant-cloud');
    assert.ok(report?.ok);
    assert.match(output, /retrying POST http:\/\/127\.0\.0\.1:\d+\/api\/v2\/box\/phusion\/ubuntu-14\.04-amd64\/versions after HTTP 503/);
    assert.match(output, /retrying GET .*\/provider\/libvirt\/amd64\/upload\/direct after HTTP 503/);
    assert.equal(standIn.seen.filter((r) => r.method === 'POST' && r.path.endsWith('/versions')).length, 2);
    assert.equal(standIn.box(ORG, BOX_NAME)!.versions.get(VERSION)!.status, 'active');
  });

  it('stand-in: a stalled upload is given up and tried again with a new upload URL', async () => {
    standIn.fail({ method: 'PUT', path: /^\/storage\//, times: 1, action: 'stall' });
    const { report, output } = await publish('vagrant-cloud');
    assert.ok(report?.ok, output);
    assert.match(output, /upload of libvirt \(amd64\) to http:\/\/127\.0\.0\.1:\d+\/storage\/[0-9a-f]+\?…: (stalled|no response)/);
    assert.match(output, /trying again with a new upload URL/);
    assert.equal(standIn.apiCalls().filter((call) => call.endsWith('/provider/libvirt/amd64/upload/direct')).length, 2);
    assert.equal(storagePuts(), 3, 'libvirt twice, virtualbox once');
    assert.equal(standIn.box(ORG, BOX_NAME)!.versions.get(VERSION)!.status, 'active');
  });

  it('stand-in: a provider failing for good leaves the version unreleased, names it and how to resume; the resume uploads only it', async () => {
    standIn.fail({ method: 'GET', path: /\/provider\/libvirt\/amd64\/upload\/direct$/, times: Infinity, action: { status: 503 } });
    const first = await publish('vagrant-cloud');
    assert.equal(first.report?.ok, false);
    assert.equal(first.report.released, false);
    assert.ok(!standIn.apiCalls().some((call) => call.endsWith('/release')), 'no release call was made');
    assert.equal(standIn.box(ORG, BOX_NAME)!.versions.get(VERSION)!.status, 'unreleased');
    const libvirt = first.report.outcomes.find((o) => o.provider === 'libvirt')!;
    assert.equal(libvirt.status, 'failed');
    assert.match(libvirt.detail, /HTTP 503 Service Unavailable \(after 2 retries\)/);
    assert.equal(first.report.outcomes.find((o) => o.provider === 'virtualbox')!.status, 'published');
    assert.match(first.report.resume!, /NOT released .*libvirt \(amd64\) failed/);
    assert.match(first.report.resume!, /resume with: npm run publish:box -- ubuntu-14\.04 --to vagrant-cloud --version 1\.0\.0/);

    standIn.failures.length = 0;
    const putsBefore = storagePuts();
    const second = await publish('vagrant-cloud', { version: VERSION });
    assert.ok(second.report?.ok, second.output);
    assert.equal(second.report.outcomes.find((o) => o.provider === 'virtualbox')!.status, 'unchanged');
    assert.equal(second.report.outcomes.find((o) => o.provider === 'libvirt')!.status, 'published');
    assert.equal(storagePuts() - putsBefore, 1, 'only libvirt was uploaded again');
    assert.equal(standIn.box(ORG, BOX_NAME)!.versions.get(VERSION)!.status, 'active');
  });

  it('stand-in: a release that fails for good says that every box is up and how to release', async () => {
    standIn.fail({ method: 'PUT', path: /\/release$/, times: 3, action: { status: 502 } });
    const { error } = await publish('vagrant-cloud');
    assert.ok(error instanceof PublishError);
    assert.match(error.message, /every box of phusion\/ubuntu-14\.04-amd64 1\.0\.0 is uploaded and verified .* releasing it failed: release version 1\.0\.0: PUT .*: HTTP 502 Bad Gateway \(after 2 retries\)/);
    assert.match(error.message, /release it with: npm run publish:box -- ubuntu-14\.04 --to vagrant-cloud --version 1\.0\.0 \(nothing is uploaded again\)/);
    const putsBefore = storagePuts();
    const again = await publish('vagrant-cloud');
    assert.ok(again.report?.ok);
    assert.equal(storagePuts(), putsBefore);
    assert.equal(standIn.box(ORG, BOX_NAME)!.versions.get(VERSION)!.status, 'active');
  });

  it('stand-in: a released version with the same boxes is left alone; one with other boxes is refused', async () => {
    assert.ok((await publish('vagrant-cloud')).report?.ok);
    const callsBefore = standIn.apiCalls().length;
    const again = await publish('vagrant-cloud');
    assert.ok(again.report?.ok);
    assert.ok(again.report.outcomes.filter((o) => o.status !== 'skipped').every((o) => o.status === 'unchanged'));
    assert.ok(!standIn.apiCalls().slice(callsBefore).some((call) => call.startsWith('PUT') || call.startsWith('POST')), 'nothing was changed');

    writeBuild(boxesDir, VERSION, { provider: 'libvirt' }); // a rebuild under the same version
    const changed = await publish('vagrant-cloud');
    assert.ok(changed.error instanceof PublishError);
    assert.match(changed.error.message, /already released .* a released version is never changed/);
  });

  it('stand-in: a refused token stops at the first request, with a hint and without the token', async () => {
    const wrong = 'vct-wrong-token-5551234';
    const { error } = await publish('vagrant-cloud', { env: { ...standInEnv(), VAGRANT_CLOUD_TOKEN: wrong } });
    assert.ok(error instanceof PublishError);
    assert.match(error.message, /read the box: GET .*: HTTP 401 Unauthorized: Invalid token; Vagrant Cloud refused the token: check VAGRANT_CLOUD_TOKEN/);
    assert.ok(!error.message.includes(wrong));
    assert.equal(standIn.seen.length, 1);
  });

  it('stand-in: a missing VAGRANT_CLOUD_TOKEN stops before any request', async () => {
    const { error } = await publish('vagrant-cloud', { env: { VAGRANT_CLOUD_URL: standIn.origin } });
    assert.ok(error instanceof PublishError);
    assert.match(error.message, /VAGRANT_CLOUD_TOKEN is not set/);
    assert.equal(standIn.seen.length, 0);
  });
});

describe('HCP Vagrant Box Registry (local stand-in)', () => {
  it('stand-in: OAuth client credentials, then box, version, provider, architecture, direct upload, completion, release', async () => {
    standIn.fail({ method: 'POST', path: /^\/oauth2\/token$/, times: 1, action: { status: 503 } });
    const { report, output } = await publish('hcp');
    assert.ok(report?.ok, output);
    assert.match(output, /retrying POST http:\/\/127\.0\.0\.1:\d+\/oauth2\/token after HTTP 503/);
    const token = standIn.seen.filter((r) => r.path === '/oauth2/token').at(-1)!;
    assert.deepEqual(Object.fromEntries(new URLSearchParams(token.body)), {
      grant_type: 'client_credentials',
      client_id: HCP_CLIENT_ID,
      client_secret: HCP_CLIENT_SECRET,
      audience: 'https://api.hashicorp.cloud',
    });
    const architecture = (name: string) => `${HCP_VERSION_PATH}/provider/${name}/architecture/amd64`;
    const calls = standIn.apiCalls().filter((call) => !call.includes('/oauth2/')).map((call) => call.replace(/\/direct\/complete\/[0-9a-f]+$/, '/direct/complete/<object>'));
    const registry = `/vagrant/2022-09-30/registry/${ORG}`;
    assert.deepEqual(calls, [
      `GET ${registry}/box/${BOX_NAME}`,
      `POST ${registry}/boxes`,
      `GET ${registry}/box/${BOX_NAME}`,
      `GET ${HCP_VERSION_PATH}`,
      `POST ${registry}/box/${BOX_NAME}/versions`,
      ...['libvirt', 'virtualbox'].flatMap((name) => [
        `GET ${architecture(name)}`,
        `GET ${HCP_VERSION_PATH}/provider/${name}`,
        `POST ${HCP_VERSION_PATH}/providers`,
        `POST ${HCP_VERSION_PATH}/provider/${name}/architectures`,
        `GET ${architecture(name)}/direct/upload`,
        `PUT ${architecture(name)}/direct/complete/<object>`,
        `GET ${architecture(name)}`,
      ]),
      `PUT ${HCP_VERSION_PATH}/release`,
    ]);
    const architectureBody = JSON.parse(standIn.seen.find((r) => r.path.endsWith('/libvirt/architectures'))!.body) as unknown;
    assert.deepEqual(architectureBody, { architecture_type: 'amd64', default: true, box_data: { checksum: built.libvirt.sha256, checksum_type: 'SHA256' } });
    for (const request of standIn.seen) {
      if (request.path.startsWith('/storage/') || request.path === '/oauth2/token') assert.equal(request.authorization, undefined);
      else assert.equal(request.authorization, `Bearer ${standIn.issuedTokens.at(-1)}`);
    }
    assert.equal(standIn.box(ORG, BOX_NAME)!.versions.get(VERSION)!.status, 'active');
  });

  it('stand-in: a stalled upload is retried; a provider failing for good leaves the version unreleased', async () => {
    standIn.fail({ method: 'PUT', path: /^\/storage\//, times: 1, action: 'stall' });
    standIn.fail({ method: 'GET', path: /\/provider\/virtualbox\/architecture\/amd64\/direct\/upload$/, times: Infinity, action: { status: 403, body: { code: 7, message: 'permission denied' } } });
    const { report, output } = await publish('hcp');
    assert.equal(report?.ok, false);
    assert.match(output, /upload of libvirt \(amd64\) .*: (stalled|no response).*trying again with a new upload URL/);
    assert.deepEqual(Object.fromEntries(report.outcomes.map((o) => [o.provider, o.status])), { libvirt: 'published', virtualbox: 'failed' });
    assert.match(report.outcomes[1]!.detail, /HTTP 403 Forbidden: permission denied/);
    assert.match(report.resume!, /resume with: npm run publish:box -- ubuntu-14\.04 --to hcp --version 1\.0\.0/);
    assert.ok(!standIn.apiCalls().some((call) => call.endsWith('/release')), 'no release call was made');
    assert.equal(standIn.box(ORG, BOX_NAME)!.versions.get(VERSION)!.status, 'unreleased');
  });

  it('stand-in: rejected client credentials fail with a hint and without the secret', async () => {
    const { error } = await publish('hcp', { env: { ...standInEnv(), HCP_CLIENT_SECRET: 'wrong-secret-value-123' } });
    assert.ok(error instanceof PublishError);
    assert.match(error.message, /HTTP 401 .*check HCP_CLIENT_ID and HCP_CLIENT_SECRET/);
    assert.ok(!error.message.includes('wrong-secret-value-123'));
    assert.ok(!standIn.seen.some((r) => r.path.startsWith('/vagrant/')), 'no API request without a token');
  });
});

describe('dry runs (local stand-in)', () => {
  for (const target of ['vagrant-cloud', 'hcp']) {
    it(`stand-in: --dry-run to ${target} prints every request and sends none`, async () => {
      const { report, output } = await publish(target, { dryRun: true });
      assert.ok(report?.ok);
      assert.equal(report.dryRun, true);
      assert.equal(report.released, false);
      assert.equal(standIn.seen.length, 0, 'nothing reached the server');
      assert.ok(report.outcomes.filter((o) => o.status !== 'skipped').every((o) => o.status === 'planned'));
      if (target === 'hcp') {
        assert.match(output, /\[dry run\] POST http:\/\/127\.0\.0\.1:\d+\/oauth2\/token grant_type=client_credentials&client_id=\[redacted\]&client_secret=\[redacted\]/);
        assert.match(output, /\[dry run\] POST .*\/registry\/phusion\/boxes \{"name":"ubuntu-14\.04-amd64"/);
        assert.match(output, /\[dry run\] PUT .*\/architecture\/amd64\/direct\/complete\/OBJECT/);
      } else {
        assert.match(output, /\[dry run\] POST http:\/\/127\.0\.0\.1:\d+\/api\/v2\/boxes \{"box":\{"username":"phusion","name":"ubuntu-14\.04-amd64"/);
        assert.match(output, /\[dry run\] POST .*\/version\/1\.0\.0\/providers \{"provider":\{"name":"libvirt","checksum":"[0-9a-f]{64}","checksum_type":"sha256","architecture":"amd64","default_architecture":true\}\}/);
      }
      assert.match(output, /\[dry run\] PUT <the pre-signed upload URL of the answer above> .*libvirt\.box \(\d+ bytes, streamed, no Authorization header\)/);
      assert.match(output, /\[dry run\] PUT .*\/version\/1\.0\.0\/release/);
    });
  }
});

describe('a registry that HashiCorp closed (local stand-in)', () => {
  it('closedAnswer: 410 always; 403/404/503 only when the explanation names the shutdown; never 401 or a plain 503', () => {
    assert.equal(closedAnswer(410, ''), true);
    assert.equal(closedAnswer(503, JSON.stringify({ message: 'HCP Vagrant has been decommissioned' })), 'HCP Vagrant has been decommissioned');
    assert.equal(closedAnswer(403, JSON.stringify({ errors: ['Box creation is no longer available'] })), 'Box creation is no longer available');
    assert.equal(closedAnswer(503, JSON.stringify({ errors: ['try again later'] })), undefined);
    assert.equal(closedAnswer(401, JSON.stringify({ errors: ['this token is no longer valid'] })), undefined);
    assert.equal(closedAnswer(404, JSON.stringify({ errors: ['Resource not found!'] })), undefined);
  });

  for (const [target, closure] of [
    ['vagrant-cloud', { scope: 'service', status: 410, body: { errors: ['Vagrant Cloud is gone'], success: false } }],
    ['hcp', { scope: 'service', status: 503, body: { code: 14, message: 'HCP Vagrant has been shut down' } }],
  ] as const) {
    it(`stand-in: ${target} answering ${closure.status} "closed" gets one request, no retry, and one clear line`, async () => {
      standIn.closure = closure;
      const { error, report, output } = await publish(target);
      assert.equal(report, undefined);
      assert.ok(error instanceof ServiceClosedError, output);
      const registryCalls = standIn.apiCalls().filter((call) => !call.includes('/oauth2/'));
      assert.equal(registryCalls.length, 1, registryCalls.join('\n'));
      assert.doesNotMatch(output, /retrying/);
      assert.equal(error.message.split('\n').length, 1);
      assert.match(error.message, new RegExp(`HTTP ${closure.status} .*: ${closure.body.message ?? closure.body.errors?.[0]}\\. The registry says it is closed \\(HashiCorp is retiring Vagrant Cloud / HCP Vagrant, hashicorp/vagrant#13836\\); nothing more was sent\\. Publish to a catalog you host instead: --to static:DIR,base-url=URL`));
    });
  }

  it('stand-in: box creation closed stops at the refused create: no read again, no version, no upload', async () => {
    standIn.closure = { scope: 'box-creation', status: 403, body: { errors: ['New boxes can no longer be created'] } };
    const { error, output } = await publish('vagrant-cloud');
    assert.ok(error instanceof ServiceClosedError, output);
    assert.deepEqual(standIn.apiCalls(), [`GET /api/v2/box/${ORG}/${BOX_NAME}`, 'POST /api/v2/boxes']);
    assert.match(error.message, /^create the box phusion\/ubuntu-14\.04-amd64: POST .*HTTP 403 Forbidden: New boxes can no longer be created\. The registry says it is closed/);
  });

  it('publish, nightly and report-merge --help say the hosted targets are being retired, with the dates', () => {
    for (const command of ['publish', 'nightly', 'report-merge']) {
      const help = boxsmith([command, '--help']);
      assert.equal(help.status, 0, help.stderr);
      assert.ok(help.stdout.includes(HCP_RETIREMENT_NOTE), `${command} --help`);
    }
    assert.match(HCP_RETIREMENT_NOTE, /hashicorp\/vagrant#13836, announced 2026-08-03\): box creation stops in the autumn of 2026, operations end between 2026-12-31 and 2027-03-15/);
    assert.ok(readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8').includes('hashicorp/vagrant#13836'), 'the README says so too');
  });

  it('stand-in: the publish command exits 1 with that one line and no stack trace', async () => {
    standIn.closure = { scope: 'service', status: 410, body: { errors: ['Vagrant Cloud is gone'] } };
    const { code, output } = await runPublish([BOX, '--to', 'vagrant-cloud'], standInEnv());
    assert.equal(code, 1, output);
    const lines = output.trim().split('\n').filter((line) => !line.startsWith('verifying '));
    assert.equal(lines.length, 1, output);
    assert.match(lines[0]!, /HTTP 410 Gone: Vagrant Cloud is gone\. The registry says it is closed/);
    assert.equal(standIn.apiCalls().length, 1);
  });
});

describe('publish command against the stand-in', () => {
  it('stand-in: one provider failing for good exits 1, makes no release call and never prints the token', async () => {
    // A server that echoes the token in its error: the message is shown, the token is not.
    standIn.fail({ method: 'GET', path: /\/provider\/libvirt\/amd64\/upload\/direct$/, times: Infinity, action: { status: 403, body: { errors: [`token ${VAGRANT_CLOUD_TOKEN} may not upload`] } } });
    const { code, output } = await runPublish([BOX, '--to', 'vagrant-cloud'], standInEnv());
    assertNoSecrets(output);
    assert.equal(code, 1, output);
    assert.match(output, /FAILED to publish phusion\/ubuntu-14\.04-amd64 1\.0\.0/);
    assert.match(output, /libvirt \(amd64\)\s+failed\s+prepare the upload of libvirt: GET .*: HTTP 403 Forbidden: token \[redacted\] may not upload/);
    assert.match(output, /resume with: npm run publish:box -- ubuntu-14\.04 --to vagrant-cloud --version 1\.0\.0/);
    assert.ok(!standIn.apiCalls().some((call) => call.endsWith('/release')), 'no release call was made');
    assert.doesNotMatch(output, /\n\s+at /, 'no stack trace');
  });

  it('usage errors exit 2 with a clear message', async () => {
    for (const [args, message] of [
      [[BOX], /publish needs --to/],
      [[BOX, '--to', 'ftp:somewhere'], /unknown target "ftp:somewhere"/],
      [[BOX, '--to', 'vagrant-cloud', '--keep', '2'], /--keep applies to static and rclone targets only/],
      [[BOX, '--to', 'static:/tmp/x', '--keep', 'zero'], /--keep takes a whole number > 0/],
      [[BOX, '--to', 'vagrant-cloud', '--bogus'], /unknown option '--bogus'/],
      [['no-such-box', '--to', 'vagrant-cloud'], /no-such-box/],
    ] as const) {
      const { code, output } = await runPublish([...args], {});
      assert.equal(code, 2, `${args.join(' ')}: ${output}`);
      assert.match(output, message);
      assert.doesNotMatch(output, /\n\s+at /, 'no stack trace');
    }
  });
});
