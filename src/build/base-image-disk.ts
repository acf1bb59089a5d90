// The base image's disk: a sparse 40 GB raw disk, partitioned and made on the host where it can be,
// with the layout the Ubuntu preseed makes for `hardware.lvm`: a small ext2 /boot partition outside
// LVM (where extlinux boots from) and the rest one volume group, `vagrant-vg`, holding the root and
// swap_1 logical volumes. The host has no device-mapper (containers, CI runners), so the volumes are
// made by libguestfs's appliance; the root filesystem is then written on the host, at host speed,
// into the root volume's extents (a fresh linear volume is one run of extents from the physical
// volume's data start), and a second appliance run checks that the volume holds exactly it.
// Without LVM: one bootable ext4 partition, as before.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Definition } from '../definitions/schema.ts';
import type { CommandRunner } from '../exec/command-runner.ts';
import { guestfishRecords, runGuestfish } from './guestfish.ts';

export const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';
const SECTOR = 512;
const MIB = 1024 * 1024;
/** The first partition starts at sector 2048. */
const PARTITION_OFFSET = MIB;
const BOOT_MB = 512;
/** Ubuntu's installer names the group after the host name it is given (vagrant). */
export const VOLUME_GROUP = 'vagrant-vg';

/** Where the root and swap are, as the guest's fstab and the kernel command line name them. */
export interface DiskLayout {
  lvm: boolean;
  rootUuid: string;
  bootUuid: string;
  /** root= on the kernel command line. */
  rootDevice: string;
  fstab: string;
  /** Where extlinux.conf's paths start in the guest: /boot on its own partition, else /. */
  extlinuxDir: string;
}

/** device-mapper's name for a volume: dashes in either name are doubled. */
export function mapperPath(vg: string, lv: string): string {
  return `/dev/mapper/${vg.replaceAll('-', '--')}-${lv.replaceAll('-', '--')}`;
}

export function diskLayout(definition: Definition, rootUuid: string, bootUuid: string): DiskLayout {
  if (!definition.hardware.lvm) {
    return {
      lvm: false,
      rootUuid,
      bootUuid,
      rootDevice: `UUID=${rootUuid}`,
      fstab: `UUID=${rootUuid}\t/\text4\terrors=remount-ro\t0\t1\n`,
      extlinuxDir: 'boot/extlinux',
    };
  }
  const root = mapperPath(VOLUME_GROUP, 'root');
  return {
    lvm: true,
    rootUuid,
    bootUuid,
    rootDevice: root,
    fstab: [
      `${root}\t/\text4\terrors=remount-ro\t0\t1`,
      `UUID=${bootUuid}\t/boot\text2\tdefaults\t0\t2`,
      `${mapperPath(VOLUME_GROUP, 'swap_1')}\tnone\tswap\tsw\t0\t0`,
      '',
    ].join('\n'),
    extlinuxDir: 'extlinux',
  };
}

export interface DiskOptions {
  runner: CommandRunner;
  definition: Definition;
  layout: DiskLayout;
  /** The configured root filesystem tree; its boot/ is moved out when /boot is a partition. */
  rootfs: string;
  raw: string;
  workDir: string;
  /** libguestfs's appliance: a kernel of the rootfs and boxsmith's cache for it. */
  guestfs: { kernel: { image: string; modules: string }; cacheDir: string; accelerator: 'kvm' | 'tcg' };
}

/** What the disk holds, for the base image's record. */
export interface DiskSummary {
  layout: 'plain' | 'lvm';
  partitions: string[];
  volumes?: { name: string; bytes: number }[];
}

export async function makeDisk(options: DiskOptions): Promise<DiskSummary> {
  const { runner, raw } = options;
  const sizeBytes = options.definition.hardware.disk_mb * MIB;
  writeFileSync(raw, '');
  await runner.run('truncate', ['-s', String(sizeBytes), raw]);
  const bootSectors = (BOOT_MB * MIB) / SECTOR;
  const table = options.layout.lvm
    ? `label: dos\nstart=2048, size=${bootSectors}, type=83, bootable\ntype=8e\n`
    : 'label: dos\nstart=2048, type=83, bootable\n';
  const tableFile = path.join(options.workDir, 'partitions.sfdisk');
  writeFileSync(tableFile, table);
  await runner.run('sh', ['-c', 'sfdisk --no-reread --no-tell-kernel "$1" < "$2"', 'sfdisk', raw, tableFile]);
  await runner.run('dd', [`if=${SYSLINUX_MBR}`, `of=${raw}`, 'bs=440', 'count=1', 'conv=notrunc']);

  if (!options.layout.lvm) {
    await makeFilesystem(runner, raw, {
      type: 'ext4', label: 'root', uuid: options.layout.rootUuid, offset: PARTITION_OFFSET, bytes: sizeBytes - PARTITION_OFFSET, tree: options.rootfs,
      // extlinux 6.04 cannot boot from ext4 with 64bit or metadata_csum, Debian's mke2fs defaults.
      features: '^64bit,^metadata_csum',
    });
    await installExtlinux(options);
    return { layout: 'plain', partitions: ['1: / ext4, bootable'] };
  }

  // /boot gets the rootfs's boot/; the root filesystem keeps an empty boot/ to mount it on.
  const bootTree = path.join(options.workDir, 'boot-tree');
  renameSync(path.join(options.rootfs, 'boot'), bootTree);
  mkdirSync(path.join(options.rootfs, 'boot'), { mode: 0o755 });
  const kernel = {
    image: path.join(bootTree, path.relative(path.join(options.rootfs, 'boot'), options.guestfs.kernel.image)),
    modules: options.guestfs.kernel.modules,
  };
  await makeFilesystem(runner, raw, {
    type: 'ext2', label: 'boot', uuid: options.layout.bootUuid, offset: PARTITION_OFFSET, bytes: BOOT_MB * MIB, tree: bootTree,
  });
  await installExtlinux(options);

  const guestfish = (commands: string[], readonly: boolean) =>
    runGuestfish(
      { runner, kernel, cacheDir: options.guestfs.cacheDir, workDir: options.workDir, drives: [{ file: raw, format: 'raw', readonly }], timeoutMs: 15 * 60_000 },
      commands,
      options.guestfs.accelerator,
    );
  // Swap first, then root takes every free extent: on a fresh physical volume a linear volume is
  // one run of extents, so root starts swapMb into the data area (checked below, not assumed).
  const swapMb = Math.ceil(options.definition.hardware.memory_mb / 4) * 4;
  const created = await guestfish(
    [
      'pvcreate /dev/sda2',
      `vgcreate ${VOLUME_GROUP} /dev/sda2`,
      `lvcreate swap_1 ${VOLUME_GROUP} ${swapMb}`,
      `lvcreate-free root ${VOLUME_GROUP} 100`,
      `mkswap /dev/${VOLUME_GROUP}/swap_1 label:swap`,
      'pvs-full',
      'lvs-full',
    ],
    false,
  );
  const records = guestfishRecords(created);
  const pv = records.find((record) => record.has('pe_start'));
  const volumes = records
    .filter((record) => record.has('lv_name'))
    .map((record) => ({ name: record.get('lv_name')!, bytes: Number(record.get('lv_size')) }));
  const root = volumes.find((volume) => volume.name === 'root');
  const peStart = Number(pv?.get('pe_start'));
  if (!root || !Number.isSafeInteger(root.bytes) || !Number.isSafeInteger(peStart)) {
    throw new Error(`libguestfs made the volume group but did not report its layout (pe_start ${pv?.get('pe_start')}, root ${root?.bytes})`);
  }
  const rootOffset = PARTITION_OFFSET + BOOT_MB * MIB + peStart + swapMb * MIB;
  await makeFilesystem(runner, raw, {
    type: 'ext4', label: 'root', uuid: options.layout.rootUuid, offset: rootOffset, bytes: root.bytes, tree: options.rootfs,
  });
  // The proof that the volume maps where the filesystem was written: the appliance finds it there.
  const checked = (await guestfish([`vfs-uuid /dev/${VOLUME_GROUP}/root`, `vfs-type /dev/${VOLUME_GROUP}/swap_1`, `mount-ro /dev/${VOLUME_GROUP}/root /`, 'is-dir /etc'], true))
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  if (checked.join(' ') !== `${options.layout.rootUuid} swap true`) {
    throw new Error(`the root volume does not hold the root filesystem written at byte ${rootOffset} of the disk: libguestfs reports ${checked.join(', ')}`);
  }
  rmSync(bootTree, { recursive: true, force: true });
  return {
    layout: 'lvm',
    partitions: [`1: /boot ext2 ${BOOT_MB} MiB, bootable`, `2: LVM physical volume of ${VOLUME_GROUP}`],
    volumes,
  };
}

interface FilesystemSpec {
  type: 'ext2' | 'ext4';
  label: string;
  uuid: string;
  offset: number;
  bytes: number;
  tree: string;
  features?: string;
}

/** mke2fs at a byte offset of the raw disk, filled from a folder (-d): no loop device, no mount. */
async function makeFilesystem(runner: CommandRunner, raw: string, fs: FilesystemSpec): Promise<void> {
  await runner.run(`mkfs.${fs.type}`, [
    '-F', '-q', '-L', fs.label, '-U', fs.uuid,
    ...(fs.features ? ['-O', fs.features] : []),
    '-E', `offset=${fs.offset}`,
    '-d', fs.tree,
    raw, `${Math.floor(fs.bytes / 1024)}k`,
  ]);
}

/** extlinux into the first partition (/ or /boot), through a loop mount of it. */
async function installExtlinux(options: DiskOptions): Promise<void> {
  const { runner } = options;
  const mountpoint = path.join(options.workDir, 'mnt');
  mkdirSync(mountpoint, { recursive: true });
  await runner.run('mount', ['-o', `loop,offset=${PARTITION_OFFSET}`, options.raw, mountpoint]);
  try {
    await runner.run('extlinux', ['--install', path.join(mountpoint, options.layout.extlinuxDir)]);
  } finally {
    await runner.run('umount', [mountpoint], { timeoutMs: 60_000 }).catch(() => runner.run('umount', ['-l', mountpoint], { allowFailure: true, timeoutMs: 30_000 }));
  }
  rmSync(mountpoint, { recursive: true, force: true });
}
