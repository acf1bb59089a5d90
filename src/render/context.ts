// What the templates see: the definition, plus everything derived from it (which Packer sources,
// which scripts in which order with which settings). Templates only place values; decisions are
// made here, in code that tests can read.
import path from 'node:path';
import { dockerStaticFile, type LoadedDefinition } from '../definitions/load.ts';
import { guestCompressorCommand } from '../definitions/compression-level.ts';
import type { Definition, Provider } from '../definitions/schema.ts';
import type { PackerVersion } from '../packer/version.ts';
import { hclList, hclString, hclTemplate } from './hcl.ts';

/** Packer source type for each provider, and the provider name Vagrant uses for its boxes. */
export const PACKER_SOURCES: Record<Provider, { sourceType: string; boxProvider: string }> = {
  virtualbox: { sourceType: 'virtualbox-iso', boxProvider: 'virtualbox' },
  vmware: { sourceType: 'vmware-iso', boxProvider: 'vmware_desktop' },
  qemu: { sourceType: 'qemu', boxProvider: 'libvirt' },
};

/** Every source in a rendered template is named `box`: `-only=qemu.box` selects a provider. */
export const SOURCE_NAME = 'box';

/** The provider name Vagrant gives boxes of this provider: libvirt, virtualbox, vmware_desktop. */
export function boxProvider(provider: Provider): string {
  return PACKER_SOURCES[provider].boxProvider;
}

export function sourceRef(provider: Provider): string {
  return `${PACKER_SOURCES[provider].sourceType}.${SOURCE_NAME}`;
}

/** Variables of the rendered Packer template that a definition's boot command may use. */
export const BOOT_COMMAND_VARIABLES = ['apt_proxy'] as const;

/** Variables of the rendered Packer template that reach the guest scripts' environment as they are set per build. */
const SCRIPT_VARIABLES = ['apt_proxy', 'content_sink', 'content_compressor'] as const;

/**
 * Plugins a modern Packer (>= 1.7) must `packer init` before it can build the template: the
 * builders only, as boxsmith packages every box itself (no vagrant post-processor).
 */
const PLUGINS: Record<Provider, { name: string; source: string; version: string }> = {
  virtualbox: { name: 'virtualbox', source: 'github.com/hashicorp/virtualbox', version: '>= 1.1.0' },
  vmware: { name: 'vmware', source: 'github.com/hashicorp/vmware', version: '>= 1.1.0' },
  qemu: { name: 'qemu', source: 'github.com/hashicorp/qemu', version: '>= 1.1.0' },
};

/** A file Packer uploads into the guest just before a shell provisioner: `source` is an HCL expression. */
export interface Upload {
  source: string;
  destination: string;
}

export interface ShellProvisioner {
  scripts: string[];
  only: string[] | false;
  expect_disconnect: boolean;
  pause_before: string | false;
  uploads: Upload[];
}

/**
 * Where Packer puts Docker's static .tgz in the guest (after the kernel's reboot, so /tmp keeps it
 * until docker-static.sh, which removes it). The host fetched and verified it (`boxsmith build`
 * passes the cached file as var.docker_static_tgz): the guest's old TLS never meets Docker's server.
 */
export const DOCKER_STATIC_GUEST_PATH = '/tmp/boxsmith-docker-static.tgz';

/** The guest scripts a definition runs, in order, with the sources each is limited to. */
export function provisioningPlan(definition: Definition): ShellProvisioner[] {
  const plan: ShellProvisioner[] = [];
  const step = (scripts: string[], extra: Partial<ShellProvisioner> = {}) =>
    plan.push({ scripts, only: false, expect_disconnect: false, pause_before: false, uploads: [], ...extra });

  // Upgraded first: a new kernel from the archive is the one kernel-install.sh checks and the reboot boots.
  step(['apt.sh', 'upgrade.sh', 'vagrant-user.sh', 'kernel-install.sh', 'kernel-cmdline.sh']);
  if (definition.kernel.packages.length > 0) {
    // A new kernel: boot it now, so guest tools are built for it and the check below sees it.
    step(['reboot.sh'], { expect_disconnect: true });
    step(['kernel-verify.sh'], { pause_before: '15s' });
  } else {
    step(['kernel-verify.sh']);
  }
  const software = ['packages.sh'];
  const uploads: Upload[] = [];
  if (definition.chef.install) software.push('chef.sh');
  if (definition.docker.install && definition.docker.source === 'static') {
    software.push('docker-static.sh');
    uploads.push({ source: 'var.docker_static_tgz', destination: hclString(DOCKER_STATIC_GUEST_PATH) });
  } else if (definition.docker.install) {
    software.push('docker.sh');
  }
  step(software, { uploads });
  if (definition.providers.includes('virtualbox')) {
    step(['virtualbox-guest-additions.sh'], { only: [sourceRef('virtualbox')] });
  }
  if (definition.providers.includes('vmware')) step(['vmware-tools.sh'], { only: [sourceRef('vmware')] });
  // The manifest last: it describes the packages as shipped (after cleanup.sh's autoremove); then
  // the size of the files as shipped, the baseline the box's size is judged against.
  step(['ssh-host-keys.sh', 'cleanup.sh', 'minimize.sh', 'manifest.sh', 'content-size.sh']);
  return plan;
}

/**
 * What manifest.sh leaves in the guest's /run (a tmpfs, so nothing of it is on the box's disk) and
 * Packer downloads into `<work_dir>/manifest/`: the installed packages, the kernel, Docker's
 * version; and content-size.sh's counts of the guest's files.
 */
/**
 * The virtio-serial port a QEMU build gives content-size.sh for its tar (the guest's
 * /dev/virtio-ports/<name>), passed by QEMU to boxsmith's Unix socket (`content_socket`).
 */
export const CONTENT_PORT_NAME = 'boxsmith.content';

export const GUEST_MANIFEST = { guestDir: '/run/boxsmith-manifest', files: ['packages.tsv', 'kernel', 'docker', 'content.tsv'] } as const;

/** Settings the guest scripts read, as `NAME=value` (values may use the template's variables). */
export function scriptEnvironment(definition: Definition): [string, string][] {
  const { chef, docker, kernel } = definition;
  const environment: [string, string][] = [
    ['BOXSMITH_APT_PROXY', '${var.apt_proxy}'],
    ['BOXSMITH_VAGRANT_USER', definition.vagrant_user.name],
    ['BOXSMITH_SUDO_PASSWORD_FILE', sudoPasswordPath(definition)],
    ['BOXSMITH_KERNEL_MINIMUM', kernel.minimum],
    ['BOXSMITH_KERNEL_PACKAGES', kernel.packages.join(' ')],
    ['BOXSMITH_KERNEL_CMDLINE', kernel.cmdline.join(' ')],
    ['BOXSMITH_PACKAGES', definition.packages.join(' ')],
    // content-size.sh: the build host's listener for the tar (boxsmith build sets it), else the guest compresses.
    ['BOXSMITH_CONTENT_SINK', '${var.content_sink}'],
    ['BOXSMITH_CONTENT_COMPRESSOR', '${var.content_compressor}'],
  ];
  if (chef.install) {
    environment.push(['BOXSMITH_CHEF_SOURCE', chef.source], ['BOXSMITH_CHEF_VERSION', chef.version ?? '']);
    if (chef.source === 'vendor-deb') {
      environment.push(['BOXSMITH_CHEF_URL', chef.url ?? ''], ['BOXSMITH_CHEF_SHA256', chef.sha256 ?? '']);
    }
  }
  if (docker.install) {
    environment.push(['BOXSMITH_DOCKER_PACKAGES', docker.packages.join(' ')]);
    if (docker.source === 'static') {
      environment.push(
        ['BOXSMITH_DOCKER_STATIC_TGZ', DOCKER_STATIC_GUEST_PATH],
        ['BOXSMITH_DOCKER_STATIC_VERSION', docker.static!.version],
        ['BOXSMITH_DOCKER_STATIC_SHA256', docker.static!.sha256],
      );
    }
    if (docker.source === 'repository' && docker.repository) {
      const repo = docker.repository;
      environment.push(
        ['BOXSMITH_DOCKER_REPO_URL', repo.url],
        ['BOXSMITH_DOCKER_REPO_SUITE', repo.suite],
        ['BOXSMITH_DOCKER_REPO_COMPONENT', repo.component],
        ['BOXSMITH_DOCKER_REPO_KEY_URL', repo.key_url],
        ['BOXSMITH_DOCKER_REPO_KEY_FINGERPRINT', repo.key_fingerprint],
      );
    }
  }
  if (definition.providers.includes('vmware')) environment.push(['BOXSMITH_VMWARE_TOOLS', definition.vmware.tools]);
  return environment;
}

/** The name of QEMU's disk in Packer's output directory (its vm_name), which the box holds as box.img. */
export const QEMU_DISK_NAME = 'box.img';

/** The rendered Vagrantfile every box carries: the package step puts it in (no Packer block names it). */
export const BOX_VAGRANTFILE = 'Vagrantfile';

/**
 * What boxsmith packages the box from, as the template's output_directory and vm_name leave it:
 * QEMU's disk, VirtualBox's and VMware's output directory (its export, its kept VM files).
 */
export function packerOutput(provider: Provider, workDir: string): string {
  return provider === 'qemu' ? path.join(workDir, 'qemu', QEMU_DISK_NAME) : path.join(workDir, provider);
}

export function templateContext(loaded: LoadedDefinition, packer: PackerVersion, repoRoot: string) {
  const { definition } = loaded;
  const { base } = definition;
  const has = (provider: Provider) => definition.providers.includes(provider);
  const passwordFile = sudoPasswordPath(definition);

  return {
    ...definition,
    definition_files: loaded.files.map((file) => path.relative(repoRoot, file)).join(', '),
    packer: {
      ...packer,
      plugins: definition.providers.map((provider) => PLUGINS[provider]),
    },
    content_port: CONTENT_PORT_NAME,
    content_compressor: guestCompressorCommand(definition.box.compression, definition.box.compression_level),
    sources: { virtualbox: has('virtualbox'), vmware: has('vmware'), qemu: has('qemu') },
    source_refs: definition.providers.map((provider) => `source.${sourceRef(provider)}`),
    iso: base.kind === 'iso' ? base.iso! : false,
    docker_static:
      definition.docker.install && definition.docker.source === 'static' ? { file: dockerStaticFile(definition.docker.static!) } : false,
    installer: base.kind === 'iso' ? base.installer! : false,
    preseed: base.kind === 'iso' ? base.installer!.preseed : false,
    debootstrap: base.kind === 'debootstrap',
    boot_command:
      base.kind === 'iso'
        ? hclList(base.installer!.boot_command.map((line) => hclTemplate(line, BOOT_COMMAND_VARIABLES)))
        : false,
    environment: hclList(
      scriptEnvironment(definition).map(([name, value]) =>
        SCRIPT_VARIABLES.some((variable) => value === `\${var.${variable}}`) ? hclTemplate(`${name}=${value}`, SCRIPT_VARIABLES) : hclString(`${name}=${value}`),
      ),
    ),
    vmware: { ...definition.vmware, iso_tools: has('vmware') && definition.vmware.tools === 'iso' },
    // tcg works on every host; `boxsmith build` passes kvm where KVM really boots a guest.
    qemu: { ...definition.qemu, disk_name: QEMU_DISK_NAME, default_accelerator: definition.qemu.accelerator === 'auto' ? 'tcg' : definition.qemu.accelerator },
    sudo_password_file: passwordFile,
    // sudo -S reads the password from a file, so it is in no command line (nor in Packer's log of
    // them); cleanup.sh removes the file, after which NOPASSWD sudo needs none.
    shutdown_command: `cat ${passwordFile} 2>/dev/null | sudo -S shutdown -P now`,
    execute_command: hclString(`cat ${passwordFile} 2>/dev/null | {{ .Vars }} sudo -S -E bash -eux '{{ .Path }}'`),
    manifest_downloads: GUEST_MANIFEST.files.map((file) => ({
      source: hclString(`${GUEST_MANIFEST.guestDir}/${file}`),
      destination: hclTemplate(`\${var.work_dir}/manifest/${file}`, ['work_dir']),
    })),
    provisioners: provisioningPlan(definition).map((provisioner) => ({
      ...provisioner,
      scripts: hclList(provisioner.scripts.map((script) => `"\${path.root}/scripts/${script}"`), '    '),
    })),
  };
}

/**
 * Where the first provisioner puts vagrant's password in the guest: the home folder (vagrant_user.name
 * is a plain name) survives the reboot a kernel upgrade makes, which /tmp does not.
 */
export function sudoPasswordPath(definition: Definition): string {
  return `/home/${definition.vagrant_user.name}/.boxsmith-sudo-password`;
}

export type TemplateContext = ReturnType<typeof templateContext>;
