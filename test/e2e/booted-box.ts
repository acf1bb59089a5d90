// A built libvirt box booted straight under QEMU (no vagrant): its box.img behind a throw-away
// qcow2 overlay, SSH forwarded on loopback, Vagrant's insecure key. For tests that need a booted
// box to change (install packages, run hooks) without touching the box as built.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { REPO_ROOT, run, tempDir } from '../helpers.ts';

export interface BootedBox {
  /** Runs a bash command as root in the guest; resolves with its exit code and output. */
  root(command: string, timeoutMs?: number): { status: number | null; stdout: string; stderr: string };
  upload(file: string, guestPath: string): void;
  console(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Boots `box` (a libvirt .box file) and waits for SSH; fails with the console's end if it never comes. */
export async function bootBox(box: string, options: { memoryMb: number; cpus: number; accelerator: 'kvm' | 'tcg' }): Promise<BootedBox> {
  const dir = tempDir('boxsmith-booted-');
  run('tar', ['-xzf', box, '-C', dir, 'box.img']);
  const overlay = path.join(dir, 'overlay.qcow2');
  run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', path.join(dir, 'box.img'), overlay]);
  const key = path.join(dir, 'vagrant.key');
  copyFileSync(path.join(REPO_ROOT, 'keys', 'vagrant'), key);
  chmodSync(key, 0o600);
  const port = await freePort();
  const consoleLog = path.join(dir, 'console.log');
  const qemu: ChildProcess = spawn(
    'qemu-system-x86_64',
    ['-accel', options.accelerator, '-cpu', options.accelerator === 'kvm' ? 'host' : 'max', '-smp', String(options.cpus), '-m', String(options.memoryMb),
      '-nodefaults', '-display', 'none', '-serial', `file:${consoleLog}`,
      '-drive', `file=${overlay},if=virtio,format=qcow2`,
      '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:22`, '-device', 'virtio-net-pci,netdev=net0'],
    { stdio: 'ignore', detached: true },
  );
  let exited = false;
  qemu.on('exit', () => (exited = true));
  // The command goes in on stdin, so no quoting survives two shells.
  const ssh = (remote: string, input: string, timeoutMs: number) => {
    const result = spawnSync('ssh', ['-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
      '-o', 'ConnectTimeout=10', '-o', 'BatchMode=yes', 'vagrant@127.0.0.1', remote], { input, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return { status: result.error ? null : result.status, stdout: result.stdout ?? '', stderr: `${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
  };
  const consoleText = () => (existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '');
  const box_: BootedBox = {
    root: (command, timeoutMs = 20 * 60_000) => ssh('sudo -n bash -s', command, timeoutMs),
    upload: (file, guestPath) => {
      const result = run('scp', ['-i', key, '-P', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
        file, `vagrant@127.0.0.1:${guestPath}`]);
      if (result.status !== 0) throw new Error(`scp ${file}: ${result.stderr}`);
    },
    console: consoleText,
    stop: async () => {
      if (!exited && qemu.pid) process.kill(-qemu.pid, 'SIGKILL');
      await new Promise((resolve) => (exited ? resolve(undefined) : qemu.once('exit', resolve)));
    },
  };
  const deadline = Date.now() + 10 * 60_000;
  while (ssh('true', '', 30_000).status !== 0) {
    if (exited || Date.now() > deadline) {
      await box_.stop();
      throw new Error(`the box did not answer SSH (${exited ? 'QEMU exited' : 'for 10 minutes'}); its console ends:\n${consoleText().slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  return box_;
}
