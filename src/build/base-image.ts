// The Debian base image, made on the host: debootstrap into a folder, configure it (the same guest
// scripts the Packer build runs, in a chroot), then a partitioned, sparse disk with extlinux (on LVM
// when the definition says so: see base-image-disk.ts), as qcow2. Debian's installer cannot run where the archive serves no installer .udebs, and building
// the initramfs under software emulation takes minutes where the host takes seconds.
// Cached by the hash of everything that goes into it, the archive's state among them: when the
// archive has new packages, a new image is made rather than an old one upgraded night after night.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Definition } from '../definitions/schema.ts';
import { isMountPoint, mountsBelow } from '../exec/mounts.ts';
import { isAlive } from '../exec/proc.ts';
import { syncDirectory, syncFile } from '../atomic-files.ts';
import { runCaptured } from '../exec/captured.ts';
import { findExecutable } from '../exec/tools.ts';
import { hashFile } from '../inputs/checksum.ts';
import { withFileLock } from '../files/lock.ts';
import { markBaseImageUsed, pruneBaseImages } from './base-image-prune.ts';
import { diskLayout, makeDisk, SYSLINUX_MBR, type DiskLayout } from './base-image-disk.ts';
import type { CommandRunner } from '../exec/command-runner.ts';
import type { ArchiveSuite } from '../inputs/archive-state.ts';

const THIS_FILE = fileURLToPath(import.meta.url);

/** What a build needs of the base image. */
export interface BaseImage {
  path: string;
  sha256: string;
  /** True when it came from the cache. */
  cached: boolean;
  /** The folder holding the image and its record. */
  dir: string;
}

export interface BaseImageOptions {
  box: string;
  definition: Definition;
  /** The archive's state now (see archiveState): part of the cache key. */
  archive: ArchiveSuite[];
  cacheDir: string;
  /** The repository root: guest scripts and Vagrant's public key come from it. */
  root: string;
  /** HTTP proxy for debootstrap (apt-cacher-ng as the host reaches it), or undefined. */
  aptProxy: string | undefined;
  runner: CommandRunner;
  /** Told why a cached image is made again. */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /** Called once when another build is making the same image and this one waits for it. */
  onWait?: (message: string) => void;
  /** How QEMU runs here (libguestfs's appliance makes the LVM volumes); tcg when unknown. */
  accelerator?: 'kvm' | 'tcg';
}

/** Host programs the image needs, each with the Debian package that has it. */
const HOST_TOOLS: [string, string][] = [
  ['debootstrap', 'debootstrap'],
  ['sfdisk', 'fdisk'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['extlinux', 'extlinux'],
  ['qemu-img', 'qemu-utils'],
  ['mount', 'mount'],
  ['chroot', 'coreutils'],
];
/** And for LVM, made inside libguestfs's appliance. */
const LVM_HOST_TOOLS: [string, string][] = [['guestfish', 'libguestfs-tools'], ['supermin', 'supermin']];
/**
 * What the initramfs needs to mount root on QEMU/libvirt (virtio, SCSI, SATA), VirtualBox (SATA,
 * IDE) and VMware (LSI, PVSCSI), through LVM. A disk moved to another controller needs its module here.
 */
const INITRAMFS_MODULES = [
  'virtio_pci', 'virtio_blk', 'virtio_scsi', 'ahci', 'ata_piix', 'sd_mod', 'mptspi', 'vmw_pvscsi',
  'dm_mod', 'ext4', 'crc32c_generic',
];
const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const MODULE_FILES = ['base-image-disk.ts', 'guestfish.ts'].map((file) => path.join(path.dirname(THIS_FILE), file));

/** Says what is missing to make a base image here, or nothing when all is there. */
export async function baseImagePrerequisites(lvm = false): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (debootstrap, chroot and mounting the image need it): run boxsmith as root');
  try {
    await access('/dev/loop-control', constants.R_OK | constants.W_OK);
  } catch {
    missing.push('loop devices (/dev/loop-control): the image is mounted through one to install the boot loader');
  }
  // root's tools live in sbin, which a non-login PATH may lack.
  const env = { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  for (const [tool, pkg] of lvm ? [...HOST_TOOLS, ...LVM_HOST_TOOLS] : HOST_TOOLS) {
    if (!findExecutable(tool, env)) missing.push(`${tool} (Debian package ${pkg})`);
  }
  if (!existsSync(SYSLINUX_MBR)) missing.push(`${SYSLINUX_MBR} (Debian package syslinux-common)`);
  if (!existsSync(DEBIAN_ARCHIVE_KEYRING)) missing.push(`${DEBIAN_ARCHIVE_KEYRING} (Debian package debian-archive-keyring)`);
  return missing;
}

/** The hash of everything that decides the image's content. */
export function baseImageKey(box: string, definition: Definition, root: string, archive: ArchiveSuite[]): string {
  const inputs = {
    box,
    // The InRelease digests: what debootstrap and the upgrade in the chroot would install.
    archive: archive.map(({ suite, sha256 }) => ({ suite, sha256 })),
    os: definition.os,
    debootstrap: definition.base.debootstrap,
    // The disk's layout: its size, LVM or not, and the swap volume (as large as the memory).
    hardware: { disk_mb: definition.hardware.disk_mb, lvm: definition.hardware.lvm, memory_mb: definition.hardware.memory_mb },
    vagrant_user: definition.vagrant_user,
    // What the chroot installs beyond debootstrap (hostSidePackages).
    packages: hostSidePackages(definition),
    // The code and scripts that make it: a change to them makes a new image.
    builder: [THIS_FILE, ...MODULE_FILES].map((file) => readFileSync(file, 'utf8')),
    scripts: ['vagrant-user.sh', 'ssh-host-keys.sh'].map((s) => readFileSync(path.join(root, 'scripts', s), 'utf8')),
    key: readFileSync(path.join(root, 'keys', 'vagrant.pub'), 'utf8'),
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
}

/** A cached base image that can be used, or why the one in the cache cannot (absent: there is none). */
export type CachedBaseImage = { usable: true; image: BaseImage } | { usable: false; problem?: string };

/**
 * The base image cached in `dir`, if it is whole: its record (written, flushed, after the image was
 * complete) parses, the image has the recorded size, and `qemu-img check` finds the qcow2 consistent
 * (a truncated or half-copied image has clusters beyond its end).
 */
export async function checkCachedBaseImage(dir: string): Promise<CachedBaseImage> {
  const image = path.join(dir, 'base.qcow2');
  const record = path.join(dir, 'base.json');
  if (!existsSync(record) && !existsSync(image)) return { usable: false };
  let recorded: { sha256?: unknown; size?: unknown };
  try {
    recorded = JSON.parse(readFileSync(record, 'utf8')) as typeof recorded;
  } catch (error) {
    return { usable: false, problem: `its record ${record} is unreadable (${(error as Error).message})` };
  }
  if (typeof recorded.sha256 !== 'string' || typeof recorded.size !== 'number') return { usable: false, problem: `its record ${record} lacks sha256 or size` };
  const size = existsSync(image) ? statSync(image).size : undefined;
  if (size !== recorded.size) return { usable: false, problem: `${image} is ${size === undefined ? 'missing' : `${size} bytes`}, its record says ${recorded.size}` };
  const check = await runCaptured('qemu-img', ['check', '-q', '-f', 'qcow2', image], { timeoutMs: 120_000 });
  if (check.exitCode !== 0) {
    const said = check.stderr.split('\n').find((line) => line.trim()) ?? check.startError?.message ?? `exit ${check.signal ?? check.exitCode}`;
    return { usable: false, problem: `qemu-img check finds ${image} damaged (${said.trim()})` };
  }
  return { usable: true, image: { path: image, sha256: recorded.sha256, cached: true, dir } };
}

/**
 * The cached image, or a new one. Builds running side by side make it once: the others wait for
 * the lock and then take it from the cache. The image appears by the rename of its finished
 * folder, so it is never read half-made.
 */
export async function ensureBaseImage(options: BaseImageOptions): Promise<BaseImage> {
  const { box, definition, cacheDir } = options;
  const key = baseImageKey(box, definition, options.root, options.archive);
  const dir = path.join(cacheDir, 'base-images', `${box}-${key}`);
  const cached = await checkCachedBaseImage(dir);
  if (cached.usable) {
    markBaseImageUsed(dir);
    return cached.image;
  }
  mkdirSync(path.dirname(dir), { recursive: true });
  const image = await withFileLock(
    `${dir}.lock`,
    async () => {
      // Another build may have made it while this one waited.
      const now = await checkCachedBaseImage(dir);
      if (now.usable) return now.image;
      if (now.problem) options.onWarning?.(`the cached ${box} base image is not used: ${now.problem}; making it again`);
      return makeBaseImage(options, key, dir);
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      onWait: (owner) => options.onWait?.(`waiting for ${owner ? `pid ${owner.pid} (since ${owner.since})` : 'another build'}, which is making the ${box} base image`),
    },
  );
  markBaseImageUsed(dir);
  for (const removed of pruneBaseImages(path.dirname(dir), box)) options.onWarning?.(`removed the base image ${removed}: two newer ${box} images exist and it was unused for a day`);
  return image;
}

async function makeBaseImage(options: BaseImageOptions, key: string, dir: string): Promise<BaseImage> {
  const { box, runner } = options;
  const image = path.join(dir, 'base.qcow2');
  const missing = await baseImagePrerequisites(options.definition.hardware.lvm);
  if (missing.length) {
    throw new Error(`cannot make the ${box} base image on this host; missing:\n  - ${missing.join('\n  - ')}`);
  }

  removeAbandonedWork(dir);
  const work = `${dir}.work-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const rootfs = path.join(work, 'rootfs');
  // Should boxsmith be killed outright, its watchdog unmounts what debootstrap and this step
  // mounted below the work folder (freeing the loop device), then removes the folder.
  const watchdog = runner.options.watchdog;
  watchdog?.register({ type: 'mounts', path: work });
  watchdog?.register({ type: 'scratch', path: work });
  try {
    await debootstrap(options, rootfs);
    const layout = diskLayout(options.definition, randomUUID(), randomUUID());
    const kernel = await configureRootfs(options, rootfs, layout);
    const raw = path.join(work, 'disk.raw');
    const disk = await makeDisk({
      runner,
      definition: options.definition,
      layout,
      rootfs,
      raw,
      workDir: work,
      guestfs: { kernel, cacheDir: path.join(options.cacheDir, 'guestfs'), accelerator: options.accelerator ?? 'tcg' },
    });
    const qcow2 = path.join(work, 'base.qcow2');
    await runner.run('qemu-img', ['convert', '-O', 'qcow2', raw, qcow2]);
    rmSync(raw);
    rmSync(rootfs, { recursive: true, force: true });
    await syncFile(qcow2);
    const { hex: sha256 } = await hashFile(qcow2, 'sha256');
    // The record says the image is complete, so it reaches the disk only after the image did.
    const recordFile = path.join(work, 'base.json');
    writeFileSync(
      recordFile,
      `${JSON.stringify({ box, key, sha256, size: statSync(qcow2).size, root_uuid: layout.rootUuid, disk, kernel: path.basename(kernel.modules), archive: options.archive, created: new Date().toISOString() }, null, 2)}\n`,
    );
    await syncFile(recordFile);
    rmSync(dir, { recursive: true, force: true });
    for (const name of readdirSync(work)) if (name !== 'base.qcow2' && name !== 'base.json') rmSync(path.join(work, name), { recursive: true, force: true });
    renameSync(work, dir);
    await syncDirectory(path.dirname(dir));
    return { path: image, sha256, cached: false, dir };
  } finally {
    // debootstrap mounts /proc and /sys in the target; never delete through a live mount.
    for (const sub of ['proc', 'sys', 'dev/pts', 'dev']) {
      const target = path.join(rootfs, sub);
      if (isMountPoint(target)) await runner.run('umount', ['-l', target], { allowFailure: true, timeoutMs: 30_000 }).catch(() => undefined);
    }
    if (existsSync(work) && mountsBelow(work).length === 0) rmSync(work, { recursive: true, force: true });
    if (!existsSync(work)) {
      watchdog?.unregister({ type: 'scratch', path: work });
      watchdog?.unregister({ type: 'mounts', path: work });
    }
  }
}

/** Work folders of base images whose maker died (`<dir>.work-<pid>`, that pid gone), with nothing mounted below. */
function removeAbandonedWork(dir: string): void {
  const parent = path.dirname(dir);
  const prefix = `${path.basename(dir)}.work-`;
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    const abandoned = path.join(parent, name);
    if (Number.isInteger(pid) && pid > 0 && !isAlive(pid) && mountsBelow(abandoned).length === 0) rmSync(abandoned, { recursive: true, force: true });
  }
}

async function debootstrap(options: BaseImageOptions, rootfs: string): Promise<void> {
  const debootstrap = options.definition.base.debootstrap!;
  // lvm2 brings the initramfs hook that activates the volume group before root is mounted.
  const include = [...debootstrap.include, debootstrap.kernel_package, ...(options.definition.hardware.lvm ? ['lvm2'] : [])];
  await options.runner.run(
    'debootstrap',
    // Named, so the archive is checked against Debian's keys even where debootstrap's default differs.
    [`--keyring=${DEBIAN_ARCHIVE_KEYRING}`, `--variant=${debootstrap.variant}`, `--include=${include.join(',')}`, debootstrap.suite, rootfs, debootstrap.mirror],
    { env: { http_proxy: options.aptProxy, DEBIAN_FRONTEND: 'noninteractive' } },
  );
}

/**
 * Files a first boot needs, then the shared guest scripts for the user and the SSH host keys.
 * Resolves with the kernel the image boots (libguestfs's appliance boots it too).
 */
async function configureRootfs(options: BaseImageOptions, rootfs: string, layout: DiskLayout): Promise<{ image: string; modules: string }> {
  const { definition, runner } = options;
  const debootstrap = definition.base.debootstrap!;
  const user = definition.vagrant_user;
  const write = (file: string, text: string, mode = 0o644) => {
    mkdirSync(path.dirname(path.join(rootfs, file)), { recursive: true });
    writeFileSync(path.join(rootfs, file), text, { mode });
  };
  write('etc/hostname', 'vagrant\n');
  write('etc/hosts', '127.0.0.1\tlocalhost\n127.0.1.1\tvagrant\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  write('etc/fstab', layout.fstab);
  if (layout.lvm) {
    // /boot is its own filesystem, the one extlinux reads: the kernel packages keep their
    // vmlinuz/initrd.img links (which extlinux.conf names) there, so installing a kernel makes it
    // the default, as update-grub does on GRUB systems.
    write('etc/kernel-img.conf', 'do_symlinks = yes\nlink_in_boot = yes\n');
    // No hibernation image to wait for at boot (the initramfs would look for one on the swap).
    write('etc/initramfs-tools/conf.d/resume', 'RESUME=none\n');
  }
  // The initramfs holds the drivers for the disks of every hypervisor boxsmith builds for, not
  // "most" modules: under emulation mkinitramfs spends about a second per module it considers, so
  // the kernel installed in the guest would take its initramfs ten minutes or more to make.
  write('etc/initramfs-tools/conf.d/boxsmith-modules', 'MODULES=list\n');
  write('etc/initramfs-tools/modules', `${INITRAMFS_MODULES.join('\n')}\n`);
  // net.ifnames=0 on the kernel line keeps the first NIC eth0 on every hypervisor.
  write('etc/network/interfaces', 'auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n');
  write(
    'etc/apt/sources.list',
    [
      `deb ${debootstrap.mirror} ${debootstrap.suite} main`,
      `deb ${debootstrap.mirror} ${debootstrap.suite}-updates main`,
      `deb ${debootstrap.security_mirror} ${debootstrap.suite}-security main`,
      '',
    ].join('\n'),
  );
  write(
    'boot/extlinux/extlinux.conf',
    [
      'DEFAULT debian',
      'PROMPT 0',
      'TIMEOUT 0',
      'LABEL debian',
      '  LINUX /vmlinuz',
      '  INITRD /initrd.img',
      `  APPEND root=${layout.rootDevice} ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0`,
      '',
    ].join('\n'),
  );
  // A new machine-id on each clone's first boot.
  write('etc/machine-id', '');
  rmSync(path.join(rootfs, 'var/lib/dbus/machine-id'), { force: true });
  writeFileSync(path.join(rootfs, 'tmp/vagrant-insecure.pub'), readFileSync(path.join(options.root, 'keys', 'vagrant.pub')));

  const chroot = (args: string[], env: Record<string, string> = {}) =>
    runner.run('chroot', [rootfs, ...args], {
      env: { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', http_proxy: options.aptProxy },
    });
  let kernel: string;
  // Updates from -updates and -security here, at the host's speed: under emulation an upgraded
  // ca-certificates alone takes minutes to rehash.
  await runner.run('mount', ['-t', 'proc', 'proc', path.join(rootfs, 'proc')]);
  try {
    // Retries: a package cache that died is started again on its port (see apt-cache.ts).
    await chroot(['apt-get', '-o', 'Acquire::Retries=5', 'update', '-q']);
    await chroot(['apt-get', '-o', 'Acquire::Retries=5', 'dist-upgrade', '-y', '-q', '--no-install-recommends']);
    await chroot(['apt-get', 'autoremove', '--purge', '-y', '-q']);
    const imageKernel = newestKernel(rootfs);
    kernel = imageKernel;
    // One kernel: the release's, when -security brought a newer one, only takes room in /boot and the box.
    await chroot(['sh', '-c', 'dpkg-query -W -f \'${Package}\\n\' "linux-image-[0-9]*" | grep -vxF "linux-image-$1" | xargs -r apt-get purge -y -q', 'sh', imageKernel]);
    // The definition's packages at the host's speed: under emulation dpkg's unpacking and the
    // maintainer scripts (a kernel's initramfs, apparmor's profiles, Docker's set-up) take minutes.
    // The guest scripts still run every step in the booted box and find these installed.
    const packages = hostSidePackages(definition);
    if (packages.length) {
      const before = kernelsIn(rootfs);
      // No daemon started in the chroot (Debian's policy-rc.d convention; systemd is not running there anyway).
      write('usr/sbin/policy-rc.d', '#!/bin/sh\nexit 101\n', 0o755);
      try {
        await chroot(['apt-get', '-o', 'Acquire::Retries=5', 'install', '-y', '-q', '--no-install-recommends', ...packages]);
      } finally {
        rmSync(path.join(rootfs, 'usr/sbin/policy-rc.d'), { force: true });
      }
      const added = kernelsIn(rootfs).filter((version) => !before.includes(version));
      if (added.length) {
        // The kernel the definition's kernel packages brought replaces the image's own, so the box
        // carries one kernel and the build boots, from the first boot on, the one the box will.
        kernel = added[added.length - 1]!;
        await chroot(['apt-get', 'purge', '-y', '-q', debootstrap.kernel_package, `linux-image-${imageKernel}`]);
        await chroot(['apt-get', 'autoremove', '--purge', '-y', '-q']);
      }
    }
    // The boot links for the kernel the image boots, where extlinux.conf looks (see kernel-img.conf).
    await chroot(['linux-update-symlinks', 'install', kernel, `/boot/vmlinuz-${kernel}`]);
    if (layout.lvm) {
      for (const link of ['vmlinuz', 'vmlinuz.old', 'initrd.img', 'initrd.img.old']) rmSync(path.join(rootfs, link), { force: true });
    }
    // Made again with the lvm2 hook and the resume setting in place.
    await chroot(['update-initramfs', '-u', '-k', kernel]);
  } finally {
    await runner.run('umount', [path.join(rootfs, 'proc')]);
  }
  await chroot(['useradd', '--create-home', '--shell', '/bin/bash', '--groups', 'sudo', user.name]);
  const passwords = path.join(rootfs, 'tmp', 'passwords');
  writeFileSync(passwords, `${user.name}:${user.password}\nroot:${user.root_password}\n`, { mode: 0o600 });
  await chroot(['sh', '-c', 'chpasswd < /tmp/passwords && rm /tmp/passwords']);
  for (const script of ['vagrant-user.sh', 'ssh-host-keys.sh']) {
    writeFileSync(path.join(rootfs, 'tmp', script), readFileSync(path.join(options.root, 'scripts', script)), { mode: 0o755 });
    await chroot(['bash', `/tmp/${script}`], { BOXSMITH_VAGRANT_USER: user.name });
    rmSync(path.join(rootfs, 'tmp', script));
  }
  await chroot(['apt-get', 'clean']);
  return { image: path.join(rootfs, 'boot', `vmlinuz-${kernel}`), modules: realpathSync(path.join(rootfs, 'lib', 'modules', kernel)) };
}

/**
 * The packages the guest scripts would install that the chroot can install as they would: the
 * definition's, the kernel's, and Docker's when they come from the distribution (a static Docker's
 * are the distribution's too; a Docker repository is only set up in the guest).
 */
export function hostSidePackages(definition: Definition): string[] {
  const { docker } = definition;
  const dockerPackages = docker.install && docker.source !== 'repository' ? docker.packages : [];
  return [...new Set([...definition.kernel.packages, ...definition.packages, ...dockerPackages])];
}

/** The kernel versions in the tree's /boot, oldest first. */
function kernelsIn(rootfs: string): string[] {
  return readdirSync(path.join(rootfs, 'boot'))
    .filter((name) => name.startsWith('vmlinuz-'))
    .map((name) => name.slice('vmlinuz-'.length))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/** The newest kernel in the tree's /boot, by version. */
function newestKernel(rootfs: string): string {
  const newest = kernelsIn(rootfs).pop();
  if (!newest) throw new Error(`debootstrap installed no kernel in ${path.join(rootfs, 'boot')}`);
  return newest;
}
