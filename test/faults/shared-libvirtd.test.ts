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

it('stand-in QEMU capability probe (a process named and argued like one): the last holder, having stopped its libvirtd, ends the probes it left', async () => {
  const { endCapabilityProbes } = await import('../../src/smoke/libvirt.ts');
  const { isAlive } = await import('../../src/exec/proc.ts');
  const { spawn } = await import('node:child_process');
  // argv as libvirtd gives its probe; `; :` keeps bash from exec'ing sleep (which would change the command line).
  const probe = spawn('bash', ['-c', 'exec -a qemu-system-x86_64 bash -c "sleep 1000; :" -qmp unix:/tmp/boxsmith-test-qemu/qmp-StandIn/qmp.monitor,server=on,wait=off'], { stdio: 'ignore', detached: true });
  const other = spawn('bash', ['-c', 'exec -a qemu-system-x86_64 bash -c "sleep 1000; :" -name guest=someone-elses-vm'], { stdio: 'ignore', detached: true });
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A prefix of the test's own: a real libvirtd's probes on this host are not the test's to end.
    const ended = endCapabilityProbes('/tmp/boxsmith-test-qemu/qmp-');
    assert.deepEqual(ended, [`QEMU capability probe ${probe.pid} of the stopped libvirtd`]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(isAlive(probe.pid!), false);
    assert.equal(isAlive(other.pid!), true, 'a VM that is not a probe is left alone');
  } finally {
    for (const child of [probe, other]) child.kill('SIGKILL');
  }
});
