// The sockets a run listens on, as `ss` lists them: every server a build starts must listen on
// loopback, or on the host-only address a hypervisor's own network needs.
import { spawnSync } from 'node:child_process';
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

/** `tcp 127.0.0.1:22 sshd` listens on loopback only. */
export function onLoopback(socket: string): boolean {
  const address = socket.split(' ')[1] ?? '';
  return /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+$/.test(address);
}
