#!/bin/bash
# Free space returned to the host so boxes are small: the hypervisor's compaction and the box's
# compression only drop blocks that read as zero or were never written.
#   - Filesystems on a disk that takes discards (QEMU with discard=unmap): fstrim frees the blocks
#     in the image itself, and costs nothing like writing 40 GB of zeros under emulation.
#   - Elsewhere (VirtualBox, VMware): fill the free space with zeros and delete the file.
# Swap is zeroed too and remade with its old UUID so fstab still finds it.
set -euo pipefail

sync
for mountpoint in $(findmnt -rn -t ext2,ext3,ext4,xfs -o TARGET); do
  if fstrim -v "$mountpoint"; then
    continue
  fi
  echo "minimize.sh: no discard on $mountpoint; zero-filling its free space"
  dd if=/dev/zero of="$mountpoint/.boxsmith-zero" bs=1M status=none || true
  sync
  rm -f "$mountpoint/.boxsmith-zero"
done

for swap in $(swapon --show=NAME --noheadings 2>/dev/null || awk 'NR > 1 && $2 == "partition" { print $1 }' /proc/swaps); do
  uuid=$(blkid -o value -s UUID "$swap" || true)
  swapoff "$swap"
  dd if=/dev/zero of="$swap" bs=1M status=none || true
  mkswap ${uuid:+-U "$uuid"} "$swap"
done
sync
