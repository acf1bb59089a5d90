#!/bin/bash
# The kernel: install what the definition names (Ubuntu 12.04: the LTS enablement kernel and its
# headers, so the box boots a kernel >= 3.8 for Docker and the user never reboots for it), then
# fail the build when the kernel the box will boot is older than the minimum.
set -euo pipefail

minimum=${BOXSMITH_KERNEL_MINIMUM:?}
read -r -a packages <<< "${BOXSMITH_KERNEL_PACKAGES:-}"

export DEBIAN_FRONTEND=noninteractive
if [ "${#packages[@]}" -gt 0 ]; then
  apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

# The boot loader's default entry is the newest installed kernel.
newest=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
[ -n "$newest" ] || { echo "kernel-install.sh: no kernel in /boot" >&2; exit 1; }
if ! dpkg --compare-versions "${newest%%-*}" ge "$minimum"; then
  echo "kernel-install.sh: the box would boot kernel $newest, older than the required $minimum" >&2
  exit 1
fi
echo "kernel-install.sh: the box boots kernel $newest (>= $minimum)"
