// The Debian base image, made on the host: debootstrap into a folder, configure it (the same guest
// scripts the Packer build runs, in a chroot), then a partitioned, sparse disk with extlinux, as
// qcow2. Debian's installer cannot run where the archive serves no installer .udebs, and building
// the initramfs under software emulation takes minutes where the host takes seconds.
// Cached by the hash of everything that goes into it.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Definition } from '../definitions/schema.ts';
import { findExecutable } from '../exec/tools.ts';
import { hashFile } from '../inputs/checksum.ts';
import { withFileLock } from '../inputs/lock.ts';
import type { CommandRunner } from './commands.ts';

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
  cacheDir: string;
  /** The repository root: guest scripts and Vagrant's public key come from it. */
  root: string;
  /** HTTP proxy for debootstrap (apt-cacher-ng as the host reaches it), or undefined. */
  aptProxy: string | undefined;
  runner: CommandRunner;
  signal?: AbortSignal;
  /** Called once when another build is making the same image and this one waits for it. */
  onWait?: (message: string) => void;
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
const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';
const PARTITION_OFFSET = 1024 * 1024; // the first partition starts at sector 2048

/** Says what is missing to make a base image here, or nothing when all is there. */
export async function baseImagePrerequisites(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (debootstrap, chroot and mounting the image need it): run boxsmith as root');
  try {
    await access('/dev/loop-control', constants.R_OK | constants.W_OK);
  } catch {
    missing.push('loop devices (/dev/loop-control): the image is mounted through one to install the boot loader');
  }
  // root's tools live in sbin, which a non-login PATH may lack.
  const env = { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  for (const [tool, pkg] of HOST_TOOLS) {
    if (!findExecutable(tool, env)) missing.push(`${tool} (Debian package ${pkg})`);
  }
  if (!existsSync(SYSLINUX_MBR)) missing.push(`${SYSLINUX_MBR} (Debian package syslinux-common)`);
  return missing;
}

/** The hash of everything that decides the image's content. */
export function baseImageKey(box: string, definition: Definition, root: string): string {
  const inputs = {
    box,
    os: definition.os,
    debootstrap: definition.base.debootstrap,
    disk_mb: definition.hardware.disk_mb,
    vagrant_user: definition.vagrant_user,
    // The code and scripts that make it: a change to them makes a new image.
    builder: readFileSync(THIS_FILE, 'utf8'),
    scripts: ['vagrant-user.sh', 'ssh-host-keys.sh'].map((s) => readFileSync(path.join(root, 'scripts', s), 'utf8')),
    key: readFileSync(path.join(root, 'keys', 'vagrant.pub'), 'utf8'),
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
}

/**
 * The cached image, or a new one. Builds running side by side make it once: the others wait for
 * the lock and then take it from the cache. The image appears by the rename of its finished
 * folder, so it is never read half-made.
 */
export async function ensureBaseImage(options: BaseImageOptions): Promise<BaseImage> {
  const { box, definition, cacheDir } = options;
  const key = baseImageKey(box, definition, options.root);
  const dir = path.join(cacheDir, 'base-images', `${box}-${key}`);
  const cached = cachedImage(dir);
  if (cached) return cached;
  mkdirSync(path.dirname(dir), { recursive: true });
  return withFileLock(
    `${dir}.lock`,
    async () => cachedImage(dir) ?? (await makeBaseImage(options, key, dir)),
    {
      ...(options.signal ? { signal: options.signal } : {}),
      onWait: (owner) => options.onWait?.(`waiting for ${owner ? `pid ${owner.pid} (since ${owner.since})` : 'another build'}, which is making the ${box} base image`),
    },
  );
}

function cachedImage(dir: string): BaseImage | undefined {
  const image = path.join(dir, 'base.qcow2');
  const record = path.join(dir, 'base.json');
  if (!existsSync(record) || !existsSync(image)) return undefined;
  const { sha256, size } = JSON.parse(readFileSync(record, 'utf8')) as { sha256: string; size: number };
  return statSync(image).size === size ? { path: image, sha256, cached: true, dir } : undefined;
}

async function makeBaseImage(options: BaseImageOptions, key: string, dir: string): Promise<BaseImage> {
  const { box, runner } = options;
  const image = path.join(dir, 'base.qcow2');
  const missing = await baseImagePrerequisites();
  if (missing.length) {
    throw new Error(`cannot make the ${box} base image on this host; missing:\n  - ${missing.join('\n  - ')}`);
  }

  const work = `${dir}.work-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const rootfs = path.join(work, 'rootfs');
  const mountpoint = path.join(work, 'mnt');
  let mounted = false;
  try {
    await debootstrap(options, rootfs);
    const rootUuid = randomUUID();
    await configureRootfs(options, rootfs, rootUuid);
    const raw = path.join(work, 'disk.raw');
    await makeDisk(options, rootfs, raw, rootUuid);
    mkdirSync(mountpoint);
    await runner.run('mount', ['-o', `loop,offset=${PARTITION_OFFSET}`, raw, mountpoint]);
    mounted = true;
    await runner.run('extlinux', ['--install', path.join(mountpoint, 'boot', 'extlinux')]);
    await runner.run('umount', [mountpoint]);
    mounted = false;
    const qcow2 = path.join(work, 'base.qcow2');
    await runner.run('qemu-img', ['convert', '-O', 'qcow2', raw, qcow2]);
    rmSync(raw);
    rmSync(rootfs, { recursive: true, force: true });
    const { hex: sha256 } = await hashFile(qcow2, 'sha256');
    writeFileSync(
      path.join(work, 'base.json'),
      `${JSON.stringify({ box, key, sha256, size: statSync(qcow2).size, root_uuid: rootUuid, created: new Date().toISOString() }, null, 2)}\n`,
    );
    rmSync(dir, { recursive: true, force: true });
    rmSync(mountpoint, { recursive: true, force: true });
    renameSync(work, dir);
    return { path: image, sha256, cached: false, dir };
  } finally {
    if (mounted) await runner.run('umount', ['-l', mountpoint], { allowFailure: true, timeoutMs: 30_000 }).catch(() => undefined);
    // debootstrap mounts /proc and /sys in the target; never delete through a live mount.
    for (const sub of ['proc', 'sys', 'dev/pts', 'dev']) {
      const target = path.join(rootfs, sub);
      if (isMountpoint(target)) await runner.run('umount', ['-l', target], { allowFailure: true, timeoutMs: 30_000 }).catch(() => undefined);
    }
    if (existsSync(work) && !isMountpoint(mountpoint)) rmSync(work, { recursive: true, force: true });
  }
}

async function debootstrap(options: BaseImageOptions, rootfs: string): Promise<void> {
  const debootstrap = options.definition.base.debootstrap!;
  const include = [...debootstrap.include, debootstrap.kernel_package];
  await options.runner.run(
    'debootstrap',
    [`--variant=${debootstrap.variant}`, `--include=${include.join(',')}`, debootstrap.suite, rootfs, debootstrap.mirror],
    { env: { http_proxy: options.aptProxy, DEBIAN_FRONTEND: 'noninteractive' } },
  );
}

/** Files a first boot needs, then the shared guest scripts for the user and the SSH host keys. */
async function configureRootfs(options: BaseImageOptions, rootfs: string, rootUuid: string): Promise<void> {
  const { definition, runner } = options;
  const debootstrap = definition.base.debootstrap!;
  const user = definition.vagrant_user;
  const write = (file: string, text: string, mode = 0o644) => {
    mkdirSync(path.dirname(path.join(rootfs, file)), { recursive: true });
    writeFileSync(path.join(rootfs, file), text, { mode });
  };
  write('etc/hostname', 'vagrant\n');
  write('etc/hosts', '127.0.0.1\tlocalhost\n127.0.1.1\tvagrant\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  write('etc/fstab', `UUID=${rootUuid}\t/\text4\terrors=remount-ro\t0\t1\n`);
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
      `  APPEND root=UUID=${rootUuid} ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0`,
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
  // Updates from -updates and -security here, at the host's speed: under emulation an upgraded
  // ca-certificates alone takes minutes to rehash.
  await runner.run('mount', ['-t', 'proc', 'proc', path.join(rootfs, 'proc')]);
  try {
    await chroot(['apt-get', 'update', '-q']);
    await chroot(['apt-get', 'dist-upgrade', '-y', '-q', '--no-install-recommends']);
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
}

/** A sparse raw disk: one bootable partition from sector 2048, ext4 made from the rootfs. */
async function makeDisk(options: BaseImageOptions, rootfs: string, raw: string, rootUuid: string): Promise<void> {
  const { runner } = options;
  const sizeBytes = options.definition.hardware.disk_mb * 1024 * 1024;
  writeFileSync(raw, '');
  await runner.run('truncate', ['-s', String(sizeBytes), raw]);
  const table = path.join(path.dirname(raw), 'partitions.sfdisk');
  writeFileSync(table, 'label: dos\nstart=2048, type=83, bootable\n');
  await runner.run('sh', ['-c', 'sfdisk --no-reread --no-tell-kernel "$1" < "$2"', 'sfdisk', raw, table]);
  await runner.run('dd', [`if=${SYSLINUX_MBR}`, `of=${raw}`, 'bs=440', 'count=1', 'conv=notrunc']);
  const partitionKiB = (sizeBytes - PARTITION_OFFSET) / 1024;
  // extlinux 6.04 cannot boot from ext4 with 64bit or metadata_csum, Debian's mke2fs defaults.
  await runner.run('mkfs.ext4', [
    '-F', '-q', '-L', 'root', '-U', rootUuid,
    '-O', '^64bit,^metadata_csum',
    '-E', `offset=${PARTITION_OFFSET}`,
    '-d', rootfs,
    raw, `${partitionKiB}k`,
  ]);
}

function isMountpoint(dir: string): boolean {
  if (!existsSync(dir)) return false;
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  const resolved = path.resolve(dir);
  return mounts.split('\n').some((line) => line.split(' ')[4] === resolved);
}
