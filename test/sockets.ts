// The sockets a run listens on, as `ss` lists them: every server a build starts must listen on
// loopback, or on the host-only address a hypervisor's own network needs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { hasEnvEntry, listPids } from '../src/exec/proc.ts';
import { runTag } from '../src/exec/run-id.ts';

/** The live processes carrying one of the runs' tags (Packer, the QEMU it starts, vagrant, ...). */
export function processesOfRuns(runIds: string[]): Set<number> {
  const tags = runIds.map(runTag);
  return new Set(listPids().filter((pid) => tags.some((tag) => hasEnvEntry(pid, tag))));
}

/** Listening TCP and UDP sockets of these processes: `tcp 127.0.0.1:5947 qemu-system-x86`. */
export function listeningSockets(pids: Set<number>): string[] {
  const listed = spawnSync('ss', ['-ltnupH'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } }).stdout ?? '';
  const sockets: string[] = [];
  for (const line of listed.split('\n').filter(Boolean)) {
    const [netid, , , , local] = line.split(/\s+/);
    for (const [, name, pid] of line.matchAll(/\("([^"]+)",pid=(\d+),/g)) {
      if (pids.has(Number(pid))) sockets.push(`${netid} ${local} ${name}`);
    }
  }
  return [...new Set(sockets)].sort();
}

/**
 * `udp 0.0.0.0:41234 qemu-system-x86`: a socket QEMU's user-mode network (slirp) opens for one of
 * the guest's outgoing datagram flows (its DNS queries to 10.0.2.3 go to the host's resolver so),
 * on a port the kernel hands out from its ephemeral range; a relay, not a server anyone was given.
 */
export function isUserNetRelay(socket: string): boolean {
  const [netid, address, program] = socket.split(' ');
  const port = Number(/:(\d+)$/.exec(address ?? '')?.[1]);
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return netid === 'udp' && /^qemu-system-/.test(program ?? '') && port >= low! && port <= high!;
}

/** `tcp 127.0.0.1:22 sshd` listens on loopback only. */
export function onLoopback(socket: string): boolean {
  const address = socket.split(' ')[1] ?? '';
  return /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+$/.test(address);
}

/** The RFB (VNC) handshake up to the server's list of security types (RFC 6143, 7.1.1-7.1.2). */
export function rfbSecurityTypes(port: number): Promise<number[]> {
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
