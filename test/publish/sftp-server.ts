// A real SFTP server on 127.0.0.1 for the rclone tests: Debian's openssh-server (`sshd -D`) with a
// throw-away host key, a throw-away user key and its own config, all in a temp folder. It logs in
// root by key only (PermitRootLogin prohibit-password), the user the tests run as, so the remote
// folder is a local temp folder the tests can inspect directly.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from './nginx-server.ts';

export const SSHD = '/usr/sbin/sshd';

export function sftpSkipReason(): string | false {
  if (!existsSync(SSHD)) return 'openssh-server is not installed (setup/install.sh installs it)';
  if (spawnSync('rclone', ['version']).status !== 0) return 'rclone is not installed (setup/install.sh installs it)';
  if (process.getuid?.() !== 0) return 'the throw-away sshd logs in root by key; run as root';
  return false;
}

export interface SftpServer {
  port: number;
  /** The folder the remote's paths are in (the tests' "remote"). */
  remoteDir: string;
  /** `:sftp,...:<remoteDir>`: the rclone connection string of the remote folder. */
  connection: string;
  stop(): Promise<void>;
}

/** Starts sshd in `dir` (keys, config, pid file there) serving `<dir>/remote`. */
export async function startSftpServer(dir: string): Promise<SftpServer> {
  const keygen = (file: string) => {
    const run = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`ssh-keygen failed: ${run.stderr}`);
  };
  const hostKey = path.join(dir, 'host_key');
  const userKey = path.join(dir, 'user_key');
  keygen(hostKey);
  keygen(userKey);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${userKey}.pub`));
  const remoteDir = path.join(dir, 'remote');
  mkdirSync(remoteDir);
  // sshd's privilege separation directory; Debian's package makes it at boot.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The temp folder is not laid out the way StrictModes wants a home directory.
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, 'utf8')}`);
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not start: ${log}`)), 15_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (/Server listening on 127\.0\.0\.1/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited (${code}): ${log}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const connection = `:sftp,host=127.0.0.1,port=${port},user=root,key_file=${userKey},known_hosts_file=${knownHosts}:${remoteDir}`;
  return {
    port,
    remoteDir,
    connection,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
