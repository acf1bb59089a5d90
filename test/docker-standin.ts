// A stand-in for Docker's static .tgz (download.docker.com cannot be reached from the test host):
// the same layout, docker/<binary>, each binary a small shell script.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run, tempDir } from './helpers.ts';

/** What 18.06's .tgz holds under docker/. */
export const STANDIN_BINARIES = ['docker', 'dockerd', 'docker-containerd', 'docker-containerd-ctr', 'docker-containerd-shim', 'docker-runc', 'docker-init', 'docker-proxy'];

/**
 * The stand-in client: `docker version --format ...` says `serverVersion` (as a daemon answering
 * would), `docker info` a storage driver; anything else names itself.
 */
function standinClient(serverVersion: string): string {
  return `#!/bin/sh
case "$1" in
  version) echo '${serverVersion}' ;;
  info) printf 'Containers: 0\\nStorage Driver: aufs\\nKernel Version: 3.13.0-170-generic\\n' ;;
  *) echo "stand-in docker" ;;
esac
`;
}

/** A stand-in for docker-<version>.tgz: `docker/<name>` for each name, each a small script. */
export function standinDockerTgz(names = STANDIN_BINARIES, serverVersion = '18.06.3-ce'): { file: string; sha256: string } {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'docker'));
  for (const name of names) {
    writeFileSync(path.join(dir, 'docker', name), name === 'docker' ? standinClient(serverVersion) : `#!/bin/sh\necho "stand-in ${name}"\n`);
    chmodSync(path.join(dir, 'docker', name), 0o644);
  }
  const file = path.join(dir, 'docker-18.06.3-ce.tgz');
  const tar = run('tar', ['-czf', file, '-C', dir, 'docker']);
  assert.equal(tar.status, 0, tar.stderr);
  return { file, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
}

