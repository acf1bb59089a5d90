// The packages an image box's base image gets installed on the host (issue 16): the definition's,
// the kernel's and Docker's distribution packages, in the cache key, so changing them makes a new
// image; a Docker repository's packages are left to the guest, where that repository is set up.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseImageKey, hostSidePackages } from '../src/build/base-image.ts';
import { loadDefinition } from '../src/definitions/load.ts';
import type { Definition } from '../src/definitions/schema.ts';
import { REPO_ROOT } from './helpers.ts';

const debian = (): Definition => structuredClone(loadDefinition('debian-12').definition);

describe('host-side packages of the debian-12 base image', () => {
  it('are the kernel packages, the definition\'s packages and Docker\'s distribution packages, each once', () => {
    assert.deepEqual(hostSidePackages(debian()), ['linux-image-amd64', 'curl', 'ca-certificates', 'rsync', 'docker.io', 'apparmor']);
  });

  it('leave out Docker when it is not installed or comes from a Docker repository', () => {
    const none = debian();
    none.docker.install = false;
    assert.equal(hostSidePackages(none).includes('docker.io'), false);
    const repository = debian();
    repository.docker.source = 'repository';
    repository.docker.packages = ['docker-ce'];
    assert.equal(hostSidePackages(repository).includes('docker-ce'), false);
  });

  it('are part of the cache key: another package makes another image', () => {
    const more = debian();
    more.packages = [...more.packages, 'htop'];
    assert.notEqual(baseImageKey('debian-12', more, REPO_ROOT, []), baseImageKey('debian-12', debian(), REPO_ROOT, []));
    const sameAgain = debian();
    assert.equal(baseImageKey('debian-12', sameAgain, REPO_ROOT, []), baseImageKey('debian-12', debian(), REPO_ROOT, []));
  });
});
