#!/bin/bash
# The running kernel is one the definition's kernel packages brought (kernel-install.sh made it the
# boot loader's default and reboot.sh booted it), and it is new enough (Docker needs >= 3.8).
set -euo pipefail

minimum=${BOXSMITH_KERNEL_MINIMUM:?}
read -r -a packages <<< "${BOXSMITH_KERNEL_PACKAGES:-}"
running=$(uname -r)
if [ "${#packages[@]}" -gt 0 ]; then
  # As in kernel-install.sh: the images the packages depend on, and the kernels those own.
  provided=$(apt-cache depends --recurse --installed "${packages[@]}" 2> /dev/null | grep -v '^[[:space:]<]' | sort -u |
    while read -r package; do dpkg-query -L "$package" 2> /dev/null | sed -n 's|^/boot/vmlinuz-||p'; done)
  if ! grep -qxF "$running" <<< "$provided"; then
    echo "kernel-verify.sh: running kernel $running is not one that ${packages[*]} provide (${provided//$'\n'/ })" >&2
    exit 1
  fi
fi
if ! dpkg --compare-versions "${running%%-*}" ge "$minimum"; then
  echo "kernel-verify.sh: running kernel $running is older than the required $minimum" >&2
  exit 1
fi
echo "kernel-verify.sh: running kernel $running (>= $minimum); command line: $(cat /proc/cmdline)"
