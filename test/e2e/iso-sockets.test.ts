// An installer build as Ubuntu's boxes make it (Packer's qemu source with its HTTP server for the
// preseed), started from a stand-in ISO (a few bytes, not an installer: no Ubuntu ISO can be had
// here) with the real Packer and QEMU: while Packer serves the preseed and QEMU runs, every socket
// of the run listens on loopback; then Ctrl-C ends it with nothing left. Skipped, loudly, where
// Packer or QEMU is missing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { findExecutable } from '../../src/exec/tools.ts';
import { buildSandbox } from '../build-sandbox.ts';
import { runIdsIn, snapshotHost, waitUntilClean } from '../faults/leftovers.ts';
import { CLI, REPO_ROOT } from '../helpers.ts';
import { listeningSockets, onLoopback, processesOfRuns } from '../sockets.ts';

const missing = ['packer', 'qemu-system-x86_64'].filter((tool) => !findExecutable(tool));
if (missing.length) process.stderr.write(`\n!! STAND-IN ISO BUILD SKIPPED: this host lacks ${missing.join(', ')}; Packer's HTTP server was NOT checked\n`);

it('stand-in ISO, real Packer and QEMU: the preseed server, VNC and the SSH forward listen on loopback only; Ctrl-C leaves nothing', { skip: missing.length ? `missing ${missing.join(', ')}` : false }, async () => {
  const { root, env } = buildSandbox('boxsmith-iso-sockets-');
  const { BOXSMITH_PACKER: _standIn, ...realPacker } = env;
  const scope = { folders: [root], libvirt: false };
  const before = snapshotHost(scope);
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'build', 'standin', '--version', '1.0.0', '--no-test', '--no-apt-cache'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...realPacker },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  // Until Packer serves the preseed and its VM runs (the stand-in ISO boots nothing; Packer waits for SSH).
  const buildLog = () => {
    const [runId] = runIdsIn(env.BOXSMITH_LOGS);
    const file = runId && path.join(env.BOXSMITH_LOGS, runId, 'standin-qemu', 'build.log');
    return file && existsSync(file) ? readFileSync(file, 'utf8') : '';
  };
  const sockets = new Set<string>();
  let vncSecurity: number[] | undefined;
  const deadline = Date.now() + 5 * 60_000;
  while (Date.now() < deadline && child.exitCode === null) {
    for (const socket of listeningSockets(processesOfRuns(runIdsIn(env.BOXSMITH_LOGS)))) sockets.add(socket);
    if (/Starting HTTP server on port/.test(buildLog()) && [...sockets].some((s) => /qemu-system/.test(s)) && [...sockets].some((s) => /packer/.test(s))) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  // The VM's console, asked as any local user would: which security types does it offer?
  const vnc = [...sockets].map((socket) => /^tcp 127\.0\.0\.1:(59\d\d) qemu/.exec(socket)?.[1]).find(Boolean);
  if (vnc) vncSecurity = await rfbSecurityTypes(Number(vnc));
  child.kill('SIGINT');
  const status = await exited;
  process.stdout.write(`sockets of the stand-in ISO build:\n  ${[...sockets].join('\n  ')}\n`);
  assert.match(buildLog(), /Starting HTTP server on port/, `${output}\n${buildLog().slice(-3000)}`);
  assert.ok([...sockets].some((s) => /packer/.test(s)), `Packer's HTTP server was seen listening: ${[...sockets].join(', ')}`);
  assert.ok([...sockets].some((s) => /qemu-system/.test(s)), `QEMU's VNC and SSH forward were seen listening: ${[...sockets].join(', ')}`);
  assert.deepEqual([...sockets].filter((socket) => !onLoopback(socket)), [], 'every socket on loopback');
  process.stdout.write(`VNC security types offered: ${JSON.stringify(vncSecurity)} (1 = none, 2 = VNC password)\n`);
  assert.deepEqual(vncSecurity, [2], 'the build VM\'s console asks for a password');
  assert.equal(status, 130, output);
  assert.deepEqual(await waitUntilClean(before, { ...scope, runIds: runIdsIn(env.BOXSMITH_LOGS) }), []);
});

/** The RFB (VNC) handshake up to the server's list of security types (RFC 6143, 7.1.1-7.1.2). */
function rfbSecurityTypes(port: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    let sentVersion = false;
    socket.setTimeout(10_000, () => socket.destroy(new Error('no RFB answer within 10 s')));
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (!sentVersion && received.length >= 12) {
        sentVersion = true;
        socket.write('RFB 003.008\n');
        received = received.subarray(12);
      }
      if (sentVersion && received.length >= 1 && received.length >= 1 + received[0]!) {
        resolve([...received.subarray(1, 1 + received[0]!)]);
        socket.destroy();
      }
    });
  });
}
