// Another run's VM on the same libvirtd while a smoke test ends: the smoke test removes the
// volumes it made and none of the other run's. libvirtd is a stand-in virsh
// (test/fixtures/faults/virsh): sharing the host's real libvirtd would touch whatever VM runs there.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { LibvirtDaemons } from '../../src/smoke/libvirt.ts';
import { REPO_ROOT, tempDir } from '../helpers.ts';

it('stand-in virsh: on a libvirtd already running, a smoke test removes only its own new volumes (its box image is in a pool of its own)', async () => {
  const state = tempDir('boxsmith-fault-virsh-');
  const volumes = path.join(state, 'volumes');
  writeFileSync(volumes, 'default there-before.img\n');
  const saved = { PATH: process.env.PATH, STANDIN_VIRSH_DIR: process.env.STANDIN_VIRSH_DIR };
  process.env.PATH = `${path.join(REPO_ROOT, 'test/fixtures/faults')}:${process.env.PATH ?? ''}`;
  process.env.STANDIN_VIRSH_DIR = state;
  try {
    const domain = 'boxsmith-ian-12-AbCdEf-default';
    const daemons = await LibvirtDaemons.start({ logDir: state, domain, stateDir: path.join(state, 'leases') });
    assert.equal(daemons.description, 'the libvirtd already running');
    writeFileSync(
      volumes,
      [
        'default there-before.img',
        `default ${domain}.img`,
        // The other run's: its domain's disk and its box image.
        'default boxsmith-an-12-U2ENAB-default.img',
        'default phusion-VAGRANTSLASH-standin-amd64_vagrant_box_image_0_1796172552_box.img',
        '',
      ].join('\n'),
    );
    const removed = await daemons.stop();
    assert.deepEqual(removed.sort(), [`volume default/${domain}.img`]);
    assert.deepEqual(readFileSync(volumes, 'utf8').trim().split('\n').sort(), [
      'default boxsmith-an-12-U2ENAB-default.img',
      'default phusion-VAGRANTSLASH-standin-amd64_vagrant_box_image_0_1796172552_box.img',
      'default there-before.img',
    ]);
    assert.ok(existsSync(path.join(state, 'deleted')));
  } finally {
    process.env.PATH = saved.PATH;
    if (saved.STANDIN_VIRSH_DIR === undefined) delete process.env.STANDIN_VIRSH_DIR;
    else process.env.STANDIN_VIRSH_DIR = saved.STANDIN_VIRSH_DIR;
  }
});
