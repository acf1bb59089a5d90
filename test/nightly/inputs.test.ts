// The inputs of a box x provider (src/build/box-inputs.ts): which rendered files a provider's build
// uses is read from the rendered template, so another provider's script or source block is no
// input of it; the input hash follows every input, and there is none while one is unknown.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { boxInputs, changedInputs, inputHash, templateFor, usedFiles } from '../../src/build/box-inputs.ts';
import { loadDefinition } from '../../src/definitions/load.ts';
import { REPO_ROOT, renderBox } from '../../src/render/render.ts';

const PACKER = { version: '1.6.6', modern: false };
const ubuntu = () => renderBox('ubuntu-14.04', { packer: PACKER });
const ARCHIVE = [{ suite: 'http://archive.ubuntu.com/ubuntu trusty', date: '2026-12-01T00:00:00.000Z', sha256: 'a'.repeat(64) }];

describe('the inputs of a box x provider', () => {
  it('are the rendered files its own part of the template names: no other provider\'s guest script', () => {
    const { files } = ubuntu();
    const scripts = (provider: 'qemu' | 'virtualbox' | 'vmware') => [...usedFiles(files, provider).keys()].filter((name) => name.startsWith('scripts/'));
    assert.ok(scripts('qemu').includes('scripts/docker.sh'));
    assert.ok(!scripts('qemu').includes('scripts/vmware-tools.sh') && !scripts('qemu').includes('scripts/virtualbox-guest-additions.sh'));
    assert.ok(scripts('vmware').includes('scripts/vmware-tools.sh') && !scripts('vmware').includes('scripts/virtualbox-guest-additions.sh'));
    assert.ok(scripts('virtualbox').includes('scripts/virtualbox-guest-additions.sh') && !scripts('virtualbox').includes('scripts/vmware-tools.sh'));
    for (const file of ['box.pkr.hcl', 'Vagrantfile', 'http/preseed.cfg', 'keys/vagrant.pub']) assert.ok(usedFiles(files, 'qemu').has(file), file);
    assert.ok(!usedFiles(files, 'qemu').has('definition.json'), 'the definition is an input of its own');
  });

  it('the box\'s Vagrantfile is an input of every provider\'s build, though no Packer block names it (boxsmith packages it into the box)', () => {
    for (const box of ['ubuntu-14.04', 'debian-12']) {
      const { files } = renderBox(box, { packer: PACKER });
      assert.doesNotMatch(String(files.find((f) => f.path === 'box.pkr.hcl')!.content), /\/Vagrantfile"/);
      for (const provider of loadDefinition(box).definition.providers) assert.ok(usedFiles(files, provider).has('Vagrantfile'), `${box} ${provider}`);
    }
  });

  it('a change to the VMware source block changes the vmware part of the template, not the qemu part', () => {
    const hcl = String(ubuntu().files.find((f) => f.path === 'box.pkr.hcl')!.content);
    const changed = hcl.replace(/disk_type_id(\s*)= "0"/, 'disk_type_id$1= "1"');
    assert.notEqual(changed, hcl);
    assert.equal(templateFor(changed, 'qemu'), templateFor(hcl, 'qemu'));
    assert.notEqual(templateFor(changed, 'vmware'), templateFor(hcl, 'vmware'));
    assert.doesNotMatch(templateFor(hcl, 'qemu'), /source "vmware-iso"|source "virtualbox-iso"|vmware-tools\.sh/);
    assert.match(templateFor(hcl, 'qemu'), /source "qemu" "box"[\s\S]*scripts\/docker\.sh/);
  });

  it('hash over every input; a new archive state changes it (and names it); none while the archive cannot be read', async () => {
    const loaded = loadDefinition('ubuntu-14.04');
    const first = await boxInputs(loaded, 'qemu', { packer: PACKER, readArchive: async () => ARCHIVE });
    assert.match(first.input_hash!, /^[0-9a-f]{64}$/);
    assert.equal(first.input_hash, inputHash(first.inputs));
    assert.deepEqual(Object.keys(first.inputs).filter((name) => !name.includes('/') && !name.includes('.') && name !== 'Vagrantfile'), ['definition', 'iso', 'archive', 'packer', 'hypervisor']);
    const newer = await boxInputs(loaded, 'qemu', { packer: PACKER, readArchive: async () => [{ ...ARCHIVE[0]!, sha256: 'b'.repeat(64) }] });
    assert.notEqual(newer.input_hash, first.input_hash);
    assert.deepEqual(changedInputs(first.inputs, newer.inputs), ['archive']);
    const otherPacker = await boxInputs(loaded, 'qemu', { packer: { version: '1.11.2', modern: true }, readArchive: async () => ARCHIVE });
    assert.ok(changedInputs(first.inputs, otherPacker.inputs).includes('packer'));
    const offline = await boxInputs(loaded, 'qemu', { packer: PACKER, readArchive: async () => { throw new Error('cannot read the archive state from http://x/InRelease: offline'); } });
    assert.equal(offline.input_hash, undefined);
    assert.deepEqual(offline.unknown, { archive: 'cannot read the archive state from http://x/InRelease: offline' });
  });

  it('boxsmith\'s code that runs Packer and packages the box is an input of every cell, by its path', async () => {
    for (const provider of ['qemu', 'virtualbox', 'vmware'] as const) {
      const { inputs } = await boxInputs(loadDefinition('ubuntu-14.04'), provider, { packer: PACKER, readArchive: async () => ARCHIVE });
      for (const file of ['src/build/step-packer.ts', 'src/build/step-package.ts', 'src/store/box-packager.ts', 'src/store/box-layouts.ts', 'src/store/parallel-gzip.ts']) {
        assert.equal(inputs[file], createHash('sha256').update(readFileSync(path.join(REPO_ROOT, file))).digest('hex'), `${provider}: ${file}`);
      }
    }
  });

  it('the debootstrap box: the base image key is an input instead of an ISO checksum', async () => {
    const inputs = await boxInputs(loadDefinition('debian-12'), 'qemu', { packer: PACKER, readArchive: async () => ARCHIVE });
    assert.ok(inputs.inputs['base-image'] && !inputs.inputs.iso);
  });
});
