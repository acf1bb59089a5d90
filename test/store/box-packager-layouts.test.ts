// The VirtualBox and VMware layouts against Packer's own vagrant post-processor (Debian's Packer
// 1.6.6), both over the same stand-in output directory: no VirtualBox or VMware runs here, so the
// builders' output is made by hand (an OVF in VirtualBox's form and a streamOptimized vmdk from
// qemu-img; a .vmx with VMware's kept files and a log it deletes). Packer runs for real: a null
// source (communicator none), artifice naming the stand-in files, then the vagrant post-processor
// with provider_override. Then both boxes are compared entry by entry and added by Debian's vagrant.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { virtualboxLayout, vmwareLayout } from '../../src/store/box-layouts.ts';
import { packageBox, type BoxLayout } from '../../src/store/box-packager.ts';
import { findExecutable } from '../../src/exec/tools.ts';
import { REPO_ROOT, run, tempDir } from '../helpers.ts';
import { VAGRANT, vagrant } from '../publish/vagrant-client.ts';

const PACKER = findExecutable('packer');
const MAC = '080027A1B2C3';
const TEMPLATE = 'Vagrant.configure("2") do |config|\n  config.ssh.username = "vagrant"\nend\n';

/** A small vmdk with zeros, text and random data, in the given subformat. */
function standInVmdk(file: string, subformat: string): void {
  const raw = `${file}.raw`;
  writeFileSync(raw, Buffer.concat([Buffer.alloc(1 << 20), Buffer.from('stand-in disk line\n'.repeat(20_000)), randomBytes(512 << 10)]));
  const converted = run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat}`, raw, file]);
  assert.equal(converted.status, 0, converted.stderr);
  run('rm', [raw]);
}

/**
 * VirtualBox's OVF export as the builder leaves it (<vm_name>.ovf, <vm_name>-disk001.vmdk), trimmed:
 * test/fixtures/build/virtualbox.ovf, which the stand-in packer leaves too.
 */
function standInOvf(mac: string | null, disk: string): string {
  const ovf = readFileSync(path.join(REPO_ROOT, 'test/fixtures/build/virtualbox.ovf'), 'utf8').replaceAll('@VM_NAME@', 'debian-12').replaceAll('@DISK@', disk);
  return mac === null ? ovf.replace(' MACAddress="@MAC@"', '') : ovf.replaceAll('@MAC@', mac);
}

/** A stand-in VirtualBox output directory (null: adapter 0 without a MAC address). */
function virtualboxStandIn(dir: string, mac: string | null = MAC): string {
  const output = path.join(dir, 'virtualbox');
  mkdirSync(output);
  standInVmdk(path.join(output, 'debian-12-disk001.vmdk'), 'streamOptimized');
  writeFileSync(path.join(output, 'debian-12.ovf'), standInOvf(mac, 'debian-12-disk001.vmdk'));
  return output;
}

/** A stand-in VMware output directory: the files its builder keeps, and a log it deletes. */
function vmwareStandIn(dir: string): string {
  const output = path.join(dir, 'vmware');
  mkdirSync(output);
  standInVmdk(path.join(output, 'disk.vmdk'), 'monolithicSparse');
  writeFileSync(path.join(output, 'debian-12.vmx'), [
    '.encoding = "UTF-8"', 'config.version = "8"', 'virtualHW.version = "9"', 'displayname = "debian-12"', 'guestos = "debian10-64"',
    'scsi0.present = "TRUE"', 'scsi0.virtualdev = "lsilogic"', 'scsi0:0.present = "TRUE"', 'scsi0:0.fileName = "disk.vmdk"',
    'ethernet0.present = "TRUE"', 'ethernet0.connectiontype = "nat"', 'ethernet0.pciSlotNumber = "32"', 'nvram = "debian-12.nvram"', '',
  ].join('\n'));
  writeFileSync(path.join(output, 'debian-12.nvram'), randomBytes(8 << 10));
  writeFileSync(path.join(output, 'debian-12.vmsd'), '.encoding = "UTF-8"\n');
  writeFileSync(path.join(output, 'debian-12.vmxf'), '<?xml version="1.0"?>\n<Foundry><VM><VMId type="string">52 00</VMId></VM></Foundry>\n');
  writeFileSync(path.join(output, 'vmware.log'), 'stand-in log: the VMware builder deletes it\n');
  return output;
}

/**
 * Packer's box from `files` of a copy of the output directory (the post-processor deletes its input
 * artifact for these providers: the one boxsmith reads stays as it was).
 */
function packerBox(dir: string, output: string, files: string[], provider: 'virtualbox' | 'vmware', vagrantfile: string): string {
  const { built, box } = packerBuild(dir, output, files, provider, vagrantfile);
  assert.equal(built.status, 0, built.stdout + built.stderr);
  return box;
}

function packerBuild(dir: string, output: string, files: string[], provider: string, vagrantfile: string) {
  const work = path.join(dir, `packer-${provider}`);
  mkdirSync(work);
  cpSync(output, path.join(work, 'output'), { recursive: true });
  const box = path.join(work, `${provider}.box`);
  writeFileSync(path.join(work, 'box.pkr.hcl'), `source "null" "stand-in" {
  communicator = "none"
}
build {
  sources = ["source.null.stand-in"]
  post-processors {
    post-processor "artifice" {
      files = ${JSON.stringify(files.map((name) => path.join(work, 'output', name)))}
    }
    post-processor "vagrant" {
      provider_override    = "${provider}"
      output               = ${JSON.stringify(box)}
      vagrantfile_template = ${JSON.stringify(vagrantfile)}
    }
  }
}
`);
  const env = { ...process.env, CHECKPOINT_DISABLE: '1', PACKER_CONFIG_DIR: work, TMPDIR: work, HOME: work };
  const built = run(PACKER!, ['build', '-color=false', 'box.pkr.hcl'], { cwd: work, env });
  return { built, box };
}

interface UnpackedBox {
  /** In tar order. */
  entries: string[];
  sha256: Map<string, string>;
  text: (name: string) => string;
}

function unpack(box: string): UnpackedBox {
  const listed = run('tar', ['-tf', box]);
  assert.equal(listed.status, 0, listed.stderr);
  const into = `${box}.unpacked`;
  mkdirSync(into);
  const extracted = run('tar', ['-xf', box, '-C', into]);
  assert.equal(extracted.status, 0, extracted.stderr);
  const entries = listed.stdout.trim().split('\n').map((name) => name.replace(/^\.\//, ''));
  assert.deepEqual([...entries].sort(), readdirSync(into).sort());
  const sha256 = new Map(entries.map((name) => [name, createHash('sha256').update(readFileSync(path.join(into, name))).digest('hex')]));
  return { entries, sha256, text: (name) => readFileSync(path.join(into, name), 'utf8') };
}

/** A Vagrantfile's statements: without comments and blank lines. */
function statements(vagrantfile: string): string[] {
  return vagrantfile.split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
}

function templateFile(dir: string): string {
  const file = path.join(dir, 'Vagrantfile');
  writeFileSync(file, TEMPLATE);
  return file;
}

/** boxsmith's box and Packer's (from `packerFiles`, what the builder's artifact would list), both unpacked. */
async function bothBoxes(dir: string, output: string, layout: BoxLayout, packerFiles: string[], provider: 'virtualbox' | 'vmware', vagrantfile: string) {
  const ours = path.join(dir, `${provider}.box`);
  const packaged = await packageBox(layout, ours);
  const boxsmith = unpack(ours);
  assert.deepEqual(boxsmith.entries, packaged.entries);
  return { packaged, boxsmith, packer: unpack(packerBox(dir, output, packerFiles, provider, vagrantfile)) };
}

test('a stand-in output directory packaged as virtualbox: the entries, metadata, base MAC and bytes of Packer\'s box', { skip: !PACKER && 'no packer' }, async () => {
  const dir = tempDir();
  const output = virtualboxStandIn(dir);
  const vagrantfile = templateFile(dir);
  const files = ['debian-12.ovf', 'debian-12-disk001.vmdk'];
  const { packaged, boxsmith, packer } = await bothBoxes(dir, output, virtualboxLayout(output, vagrantfile), files, 'virtualbox', vagrantfile);
  assert.deepEqual(packaged.entries, ['metadata.json', 'Vagrantfile', 'box.ovf', 'debian-12-disk001.vmdk']);
  // Packer's order is its temporary folder's, lexical; the names are the same.
  assert.deepEqual(packer.entries, ['Vagrantfile', 'box.ovf', 'debian-12-disk001.vmdk', 'metadata.json']);
  assert.deepEqual([...boxsmith.entries].sort(), [...packer.entries].sort());
  assert.equal(boxsmith.text('metadata.json'), packer.text('metadata.json'));
  assert.deepEqual(JSON.parse(boxsmith.text('metadata.json')), { provider: 'virtualbox' });
  for (const name of ['box.ovf', 'debian-12-disk001.vmdk']) assert.equal(boxsmith.sha256.get(name), packer.sha256.get(name), name);
  // The Vagrantfiles differ only in comments and blank lines: base_mac, then the template's.
  assert.deepEqual(statements(boxsmith.text('Vagrantfile')), statements(packer.text('Vagrantfile')));
  assert.deepEqual(statements(boxsmith.text('Vagrantfile')), [
    'Vagrant.configure("2") do |config|', `config.vm.base_mac = "${MAC}"`, 'end', ...statements(TEMPLATE),
  ]);
  const syntax = run('ruby', ['-c', '-e', boxsmith.text('Vagrantfile')]);
  assert.equal(syntax.status, 0, syntax.stderr);
  assert.equal(readdirSync(output).length, 2, 'the output directory boxsmith read stays as it was');
});

test('a stand-in output directory packaged as vmware_desktop: the entries, metadata and bytes of Packer\'s box, the builder\'s deleted log left out', { skip: !PACKER && 'no packer' }, async () => {
  const dir = tempDir();
  const output = vmwareStandIn(dir);
  const vagrantfile = templateFile(dir);
  // Packer's VMware builder would have deleted vmware.log before its artifact listed the folder.
  const kept = readdirSync(output).filter((name) => name !== 'vmware.log');
  const { packaged, boxsmith, packer } = await bothBoxes(dir, output, vmwareLayout(output, vagrantfile), kept, 'vmware', vagrantfile);
  assert.deepEqual(packaged.entries, ['metadata.json', 'Vagrantfile', 'debian-12.vmx', 'debian-12.nvram', 'debian-12.vmsd', 'debian-12.vmxf', 'disk.vmdk']);
  assert.deepEqual(packer.entries, ['Vagrantfile', 'debian-12.nvram', 'debian-12.vmsd', 'debian-12.vmx', 'debian-12.vmxf', 'disk.vmdk', 'metadata.json']);
  assert.deepEqual([...boxsmith.entries].sort(), [...packer.entries].sort());
  assert.equal(boxsmith.text('metadata.json'), packer.text('metadata.json'));
  assert.deepEqual(JSON.parse(boxsmith.text('metadata.json')), { provider: 'vmware_desktop' });
  for (const name of kept) assert.equal(boxsmith.sha256.get(name), packer.sha256.get(name), name);
  // Packer wraps the template in comments of its own; boxsmith's is the template itself.
  assert.equal(boxsmith.text('Vagrantfile'), TEMPLATE);
  assert.deepEqual(statements(packer.text('Vagrantfile')), statements(TEMPLATE));
});

test('a stand-in output directory as libvirt: Packer 1.6.6\'s post-processor panics after artifice (its libvirt provider reads the qemu builder\'s artifact state)', { skip: !PACKER && 'no packer' }, () => {
  const dir = tempDir();
  const output = path.join(dir, 'qemu');
  mkdirSync(output);
  assert.equal(run('qemu-img', ['create', '-f', 'qcow2', path.join(output, 'box.img'), '16M']).status, 0);
  // post-processor/vagrant/libvirt.go:67: artifact.State("diskName").(string), nil after artifice.
  const { built } = packerBuild(dir, output, ['box.img'], 'libvirt', templateFile(dir));
  assert.notEqual(built.status, 0);
  assert.match(built.stdout + built.stderr, /panic: interface conversion: interface \{\} is nil, not string/);
  assert.match(built.stdout + built.stderr, /libvirt\.go:67/);
});

for (const [provider, standIn, layout] of [
  ['virtualbox', virtualboxStandIn, virtualboxLayout],
  ['vmware_desktop', vmwareStandIn, vmwareLayout],
] as const) {
  test(`a stand-in output directory packaged as ${provider}: Debian's vagrant adds it with --provider ${provider} (box add boots nothing and needs no ${provider})`, { skip: !VAGRANT && 'no vagrant' }, async () => {
    const dir = tempDir();
    const box = path.join(dir, `${provider}.box`);
    await packageBox(layout(standIn(dir), templateFile(dir)), box, { compression: 'gzip' });
    const home = path.join(dir, 'vagrant-home');
    const added = await vagrant(['box', 'add', '--name', 't/x', '--provider', provider, box], { home: dir, env: { VAGRANT_HOME: home } });
    assert.equal(added.code, 0, added.output);
    assert.match(added.output, new RegExp(`Successfully added box 't/x' \\(v0\\) for '${provider}'`));
    const listed = await vagrant(['box', 'list'], { home: dir, env: { VAGRANT_HOME: home } });
    assert.match(listed.output, new RegExp(`t/x\\s+\\(${provider}, 0\\)`));
  });
}

function assertOneLine(action: () => unknown, pattern: RegExp): void {
  assert.throws(action, (error: Error) => {
    assert.equal(error.name, 'BoxStoreError');
    assert.doesNotMatch(error.message, /\n/);
    assert.match(error.message, pattern);
    return true;
  });
}

test('a stand-in output directory whose OVF has no MAC address for adapter 0 is one error naming the OVF and line', () => {
  const dir = tempDir();
  const output = virtualboxStandIn(dir, null);
  assertOneLine(() => virtualboxLayout(output), /debian-12\.ovf:\d+: network adapter 0 has no MACAddress/);
});

test('a stand-in output directory: the base MAC found whatever the attributes\' order and quotes, a malformed one refused', () => {
  const dir = tempDir();
  const output = virtualboxStandIn(dir);
  const ovf = path.join(output, 'debian-12.ovf');
  const text = readFileSync(ovf, 'utf8');
  writeFileSync(ovf, text.replace(/<Adapter slot="0"[^>]*>/, `<Adapter\n   type='82540EM' MACAddress='${MAC.toLowerCase()}'\n   slot='0' enabled='true'>`));
  assert.match(virtualboxLayout(output).vagrantfileText!, new RegExp(`config\\.vm\\.base_mac = "${MAC.toLowerCase()}"`));
  writeFileSync(ovf, text.replace(`MACAddress="${MAC}"`, 'MACAddress="08:00:27"'));
  assertOneLine(() => virtualboxLayout(output), /debian-12\.ovf:\d+: network adapter 0's MACAddress "08:00:27" is not 12 hex digits/);
  writeFileSync(ovf, text.replace(/<Adapter slot="0"[^>]*>/, '<Adapter slot="1">'));
  assertOneLine(() => virtualboxLayout(output), /debian-12\.ovf: no network adapter 0/);
});

test('a stand-in output directory missing the disk its OVF or .vmx names, or with two OVFs, is one error', () => {
  const dir = tempDir();
  const virtualbox = virtualboxStandIn(dir);
  run('rm', [path.join(virtualbox, 'debian-12-disk001.vmdk')]);
  assertOneLine(() => virtualboxLayout(virtualbox), /debian-12\.ovf: references debian-12-disk001\.vmdk, which is not in/);
  writeFileSync(path.join(virtualbox, 'other.ovf'), standInOvf(MAC, 'x.vmdk'));
  assertOneLine(() => virtualboxLayout(virtualbox), /2 \.ovf files \(debian-12\.ovf, other\.ovf\)/);
  const vmware = vmwareStandIn(dir);
  run('rm', [path.join(vmware, 'disk.vmdk')]);
  assertOneLine(() => vmwareLayout(vmware), /debian-12\.vmx: names the disk disk\.vmdk, which is not in/);
  run('rm', [path.join(vmware, 'debian-12.vmx')]);
  assertOneLine(() => vmwareLayout(vmware), /no \.vmx file/);
  assertOneLine(() => vmwareLayout(path.join(dir, 'absent')), /absent: not a readable output directory \(ENOENT\)/);
});
