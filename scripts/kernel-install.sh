#!/bin/bash
# The kernel: install what the definition names (Ubuntu 12.04: the LTS enablement kernel and its
# headers, so the box boots a kernel >= 3.8 for Docker and the user never reboots for it; Debian's
# image boxes: the generic kernel, which the base image already holds in place of debootstrap's),
# check that the boot loader's default is now a kernel those packages installed, and fail the build
# when the kernel the box will boot is older than the minimum. reboot.sh then boots it and kernel-verify.sh checks it runs.
set -euo pipefail

minimum=${BOXSMITH_KERNEL_MINIMUM:?}
read -r -a packages <<< "${BOXSMITH_KERNEL_PACKAGES:-}"
grub_cfg=${BOXSMITH_GRUB_CFG:-/boot/grub/grub.cfg}
extlinux_conf=${BOXSMITH_EXTLINUX_CONF:-/boot/extlinux/extlinux.conf}

kernels() { find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V; }

# The version of the kernel the boot loader starts by default. GRUB: the first menu entry's linux
# line (update-grub lists the newest kernel first; boxsmith leaves GRUB_DEFAULT at 0). extlinux: the
# DEFAULT label's LINUX, a path on the /boot filesystem, typically the /vmlinuz symlink that the
# kernel packages point at the kernel installed last.
boot_default() {
  local file
  if [ -f "$grub_cfg" ]; then
    file=$(awk '$1 == "linux" || $1 == "linux16" { print $2; exit }' "$grub_cfg")
  elif [ -f "$extlinux_conf" ]; then
    file=$(awk '
      tolower($1) == "default" { want = $2 }
      tolower($1) == "label" { label = $2 }
      (tolower($1) == "linux" || tolower($1) == "kernel") && (want == "" || label == want) { print $2; exit }
    ' "$extlinux_conf")
    # On a separate /boot partition the boot loader's / is the guest's /boot.
    if mountpoint -q /boot; then file=/boot/${file#/}; fi
  else
    echo "kernel-install.sh: neither $grub_cfg nor $extlinux_conf exists" >&2
    return 1
  fi
  [ -n "$file" ] || { echo "kernel-install.sh: the boot loader's configuration names no kernel" >&2; return 1; }
  file=$(readlink -f "$file")
  echo "${file##*/vmlinuz-}"
}

# The kernel versions the named packages bring: the images they depend on, directly or through
# metapackages (linux-image-amd64, linux-generic-lts-trusty), with the /boot/vmlinuz-* each owns.
provided_kernels() {
  apt-cache depends --recurse --installed "${packages[@]}" 2> /dev/null | grep -v '^[[:space:]<]' | sort -u |
    while read -r package; do dpkg-query -L "$package" 2> /dev/null | sed -n 's|^/boot/vmlinuz-||p'; done
}

export DEBIAN_FRONTEND=noninteractive
before=$(kernels)
if [ "${#packages[@]}" -gt 0 ]; then
  apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
installed=$(comm -13 <(echo "$before") <(kernels))
default=$(boot_default)
[ -e "/boot/vmlinuz-$default" ] || { echo "kernel-install.sh: the boot loader's default kernel /boot/vmlinuz-$default does not exist" >&2; exit 1; }

if [ "${#packages[@]}" -gt 0 ]; then
  provided=$(provided_kernels)
  if ! grep -qxF "$default" <<< "$provided"; then
    echo "kernel-install.sh: the boot loader would start kernel $default, not one that ${packages[*]} provide (${provided//$'\n'/ })" >&2
    exit 1
  fi
fi
if ! dpkg --compare-versions "${default%%-*}" ge "$minimum"; then
  echo "kernel-install.sh: the box would boot kernel $default, older than the required $minimum" >&2
  exit 1
fi
echo "kernel-install.sh: the box boots kernel $default (>= $minimum)${installed:+; newly installed: ${installed//$'\n'/ }}"
