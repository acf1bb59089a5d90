// The VirtualBox and VMware box layouts, as Packer's vagrant post-processor (v1.6.6, the one Debian
// ships) makes them from a builder's output directory: which files go in under which names, the
// metadata and the Vagrantfile. packageBox (box-packager.ts) writes them, for every build of these
// providers (src/build/step-package.ts: the template has no post-processor); libvirt's is beside it.
// Packer's tar has every file of its temporary folder in lexical order (post-processor/vagrant/
// util.go:106-159, filepath.Walk); boxsmith's has metadata.json and the Vagrantfile first, so that
// a reader finds them without reading the disks.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { displayPath } from '../definitions/errors.ts';
import { BoxStoreError } from './box-store.ts';

import type { BoxLayout, BoxSourceFile } from './box-packager.ts';

/**
 * VirtualBox (post-processor/vagrant/virtualbox.go): every file of the output directory copied under
 * its own name (:28-44) except the one OVF, renamed box.ovf (:46-49, :63-90: none or more than one
 * is an error); metadata {"provider":"virtualbox"} (:25); a Vagrantfile setting config.vm.base_mac
 * to the MAC address of the OVF's network adapter 0 (:92-118, :175-179), before the template's
 * contents (post-processor.go:184-197, :337-344). An OVA (which Packer unpacks, :31-35) is refused:
 * the templates export OVF, Packer's default format.
 */
export function virtualboxLayout(outputDir: string, vagrantfile?: string): BoxLayout {
  const names = outputFiles(outputDir);
  const ova = names.find((name) => name.endsWith('.ova'));
  if (ova) throw new BoxStoreError(`${displayPath(path.join(outputDir, ova))}: an OVA; boxsmith packages VirtualBox's OVF export (format = "ovf")`);
  const ovfs = names.filter((name) => name.endsWith('.ovf'));
  if (ovfs.length !== 1) {
    throw new BoxStoreError(`${displayPath(outputDir)}: ${ovfs.length === 0 ? 'no .ovf file' : `${ovfs.length} .ovf files (${ovfs.join(', ')})`}; a VirtualBox box has exactly one, as box.ovf`);
  }
  const ovf = path.join(outputDir, ovfs[0]!);
  const ovfText = readFileSync(ovf, 'utf8');
  for (const href of ovfReferences(ovfText)) {
    if (!names.includes(href)) throw new BoxStoreError(`${displayPath(ovf)}: references ${href}, which is not in ${displayPath(outputDir)}`);
  }
  const baseMac = ovfBaseMacAddress(ovfText, ovf);
  const template = vagrantfile === undefined ? '' : `\n${readFileSync(vagrantfile, 'utf8')}`;
  return {
    metadata: { provider: 'virtualbox' },
    vagrantfileText: `# The MAC address of the OVF's adapter 0: VirtualBox gives the imported VM's NAT adapter this one.\nVagrant.configure("2") do |config|\n  config.vm.base_mac = "${baseMac}"\nend\n${template}`,
    files: [
      { name: 'box.ovf', source: ovf },
      ...names.filter((name) => name !== ovfs[0]).map((name): BoxSourceFile => ({ name, source: path.join(outputDir, name) })),
    ],
  };
}

/**
 * The extensions Packer's VMware builder keeps in its output directory, deleting every other file
 * (builder/vmware/common/step_clean_files.go:16); the post-processor then copies all that is left
 * under its own name (post-processor/vagrant/vmware.go:21-28), skipping nothing itself.
 */
export const VMWARE_KEPT_EXTENSIONS = ['.nvram', '.vmdk', '.vmsd', '.vmx', '.vmxf'] as const;

/**
 * VMware (post-processor/vagrant/vmware.go): metadata {"provider":"vmware_desktop"} (:18), the
 * files the builder keeps (VMWARE_KEPT_EXTENSIONS; others, such as vmware.log, left out), and the
 * template's Vagrantfile as it is (the provider adds none, :30). Exactly one .vmx, and every disk it
 * names present.
 */
export function vmwareLayout(outputDir: string, vagrantfile?: string): BoxLayout {
  const names = outputFiles(outputDir).filter((name) => (VMWARE_KEPT_EXTENSIONS as readonly string[]).includes(path.extname(name)));
  const vmxs = names.filter((name) => name.endsWith('.vmx'));
  if (vmxs.length !== 1) {
    throw new BoxStoreError(`${displayPath(outputDir)}: ${vmxs.length === 0 ? 'no .vmx file' : `${vmxs.length} .vmx files (${vmxs.join(', ')})`}; a VMware box has exactly one`);
  }
  const vmx = path.join(outputDir, vmxs[0]!);
  for (const disk of vmxDisks(readFileSync(vmx, 'utf8'))) {
    if (!names.includes(disk)) throw new BoxStoreError(`${displayPath(vmx)}: names the disk ${disk}, which is not in ${displayPath(outputDir)}`);
  }
  return {
    metadata: { provider: 'vmware_desktop' },
    ...(vagrantfile ? { vagrantfile } : {}),
    files: [vmxs[0]!, ...names.filter((name) => name !== vmxs[0])].map((name) => ({ name, source: path.join(outputDir, name) })),
  };
}

/**
 * The MAC address of network adapter 0 in VirtualBox's OVF (vbox:Machine's
 * <Adapter slot="0" ... MACAddress="080027A1B2C3">): the one Packer's regexp
 * `<Adapter slot="0".+?MACAddress="(.+?)"` finds (virtualbox.go:110), with the attributes in any
 * order, either quote, across lines. None, or one that is not 12 hex digits, is one error.
 */
export function ovfBaseMacAddress(ovfText: string, ovfFile: string): string {
  for (const tag of ovfText.matchAll(/<Adapter\b([^>]*)>/g)) {
    const attributes = xmlAttributes(tag[1]!);
    if (attributes.get('slot') !== '0') continue;
    const mac = attributes.get('MACAddress');
    const line = ovfText.slice(0, tag.index).split('\n').length;
    if (mac === undefined) throw new BoxStoreError(`${displayPath(ovfFile)}:${line}: network adapter 0 has no MACAddress; Vagrant's base_mac needs it`);
    if (!/^[0-9A-Fa-f]{12}$/.test(mac)) throw new BoxStoreError(`${displayPath(ovfFile)}:${line}: network adapter 0's MACAddress "${mac}" is not 12 hex digits`);
    return mac;
  }
  throw new BoxStoreError(`${displayPath(ovfFile)}: no network adapter 0 (<Adapter slot="0" MACAddress="...">) with the MAC address Vagrant's base_mac needs`);
}

/** The files the OVF's References name (ovf:href). */
function ovfReferences(ovfText: string): string[] {
  const references = /<References\b[^>]*>([\s\S]*?)<\/References>/.exec(ovfText)?.[1] ?? '';
  return [...references.matchAll(/<File\b([^>]*)>/g)].flatMap((tag) => {
    const href = xmlAttributes(tag[1]!).get('ovf:href');
    return href === undefined ? [] : [href];
  });
}

/** The disk files a .vmx names (scsi0:0.fileName = "disk.vmdk"; sata, ide and nvme likewise). */
function vmxDisks(vmxText: string): string[] {
  return [...vmxText.matchAll(/^\s*(?:scsi|sata|ide|nvme)\d+:\d+\.fileName\s*=\s*"([^"]*\.vmdk)"\s*$/gim)].map((match) => match[1]!);
}

function xmlAttributes(text: string): Map<string, string> {
  return new Map([...text.matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)].map((match) => [match[1]!, match[2] ?? match[3]!]));
}

/** The output directory's files, sorted; a subfolder is refused (Packer would flatten it into the box's top). */
function outputFiles(outputDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(outputDir).sort();
  } catch (error) {
    throw new BoxStoreError(`${displayPath(outputDir)}: not a readable output directory (${(error as NodeJS.ErrnoException).code})`);
  }
  for (const name of names) {
    if (!statSync(path.join(outputDir, name)).isFile()) throw new BoxStoreError(`${displayPath(path.join(outputDir, name))}: not a file; a box's output directory holds only files`);
  }
  return names;
}
