// Debian's nginx as the tests run it: the configuration `boxsmith nginx-conf` prints, in the
// foreground in its own process group, as an unprivileged user when the tests run as root, on a
// free port of 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { snapshotProcesses, signalProcessGroup, sleep } from '../../src/exec/proc.ts';
import { findExecutable } from '../../src/exec/tools.ts';
import { boxsmith, tempDir } from '../helpers.ts';

export const NGINX = findExecutable('nginx', { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` });

/** A port nothing listens on right now (nginx takes it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * nginx in its own process group, in the foreground; as an unprivileged user when the tests run
 * as root, which shows the configuration needs no root (its pid, logs and temporary folders are
 * in the prefix) and that the tree's files are readable by anyone.
 */
export function startNginx(prefix: string, root: string): ChildProcess {
  const args = ['-p', prefix, '-c', 'nginx.conf', '-g', 'daemon off;'];
  let command = NGINX!;
  if (process.getuid?.() === 0) {
    // The two temporary folders only: their parent is /tmp, whose mode (1777, sticky) must stay as it is.
    for (const dir of [prefix, root]) chmodSync(dir, 0o755);
    chownSync(prefix, 65534, 65534);
    command = 'setpriv';
    args.unshift('--reuid=65534', '--regid=65534', '--clear-groups', NGINX!);
  }
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.once('close', (code) => {
    if (code) console.error(`nginx exited ${code}: ${stderr}`);
  });
  return child;
}

export async function waitForHttp(url: string, nginx: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited ${nginx.exitCode} before answering`);
    try {
      await fetch(url, { method: 'HEAD' });
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nginx did not answer ${url}`);
}

/** Live processes of nginx's group: the master and its workers. */
export function groupMembers(pgid: number): number[] {
  return [...snapshotProcesses().values()].filter((p) => p.pgid === pgid && p.state !== 'Z' && p.state !== 'X').map((p) => p.pid);
}

/** SIGTERM to the group (nginx's fast shutdown), SIGKILL to whatever is left after 5 s. */
export async function stopNginx(nginx: ChildProcess): Promise<void> {
  const pgid = nginx.pid!;
  if (!groupMembers(pgid).length) return;
  signalProcessGroup(pgid, 'SIGTERM');
  for (let waited = 0; waited < 5_000 && groupMembers(pgid).length; waited += 50) await sleep(50);
  if (groupMembers(pgid).length) signalProcessGroup(pgid, 'SIGKILL');
  for (let waited = 0; waited < 5_000 && groupMembers(pgid).length; waited += 50) await sleep(50);
}

/**
 * `root` served by nginx with the configuration `boxsmith nginx-conf` prints, stopped when the test
 * ends; its base URL once it answers. The folders above `root` must let nginx's user through.
 */
export async function serveWithNginx(t: TestContext, root: string, port?: number): Promise<string> {
  port ??= await freePort();
  const prefix = tempDir('boxsmith-nginx-prefix-');
  const conf = boxsmith(['nginx-conf', root, '--port', String(port)]);
  if (conf.status !== 0) throw new Error(`boxsmith nginx-conf failed: ${conf.stderr}`);
  writeFileSync(path.join(prefix, 'nginx.conf'), conf.stdout);
  const nginx = startNginx(prefix, root);
  t.after(() => stopNginx(nginx));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/`, nginx);
  return url;
}
