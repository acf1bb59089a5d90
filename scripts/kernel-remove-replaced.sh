#!/bin/bash
# The kernel the base image booted and kernel.packages replaced (debootstrap images: the cloud
# kernel, which boots fastest under emulation, until the build installs the generic one): purged
# once the box runs the installed kernel (kernel-verify.sh checked), so the box carries one kernel.
set -euo pipefail

replaced=${BOXSMITH_KERNEL_REPLACED:?}
running=$(uname -r)
export DEBIAN_FRONTEND=noninteractive
purge=("$replaced")
for image in $(apt-cache depends --installed "$replaced" 2> /dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p'); do
  if [ "$image" = "linux-image-$running" ]; then
    echo "kernel-remove-replaced.sh: $replaced brings the running kernel $running; nothing is removed" >&2
    exit 1
  fi
  purge+=("$image")
done
apt-get purge -y -q "${purge[@]}"
echo "kernel-remove-replaced.sh: purged ${purge[*]}; the box boots $running"
