#!/bin/bash
# Kernel command line: add the definition's parameters (cgroup_enable=memory swapaccount=1: the
# memory cgroup and swap accounting Docker's memory limits need) to the boot loader's configuration.
# Idempotent whatever the line held before: a parameter already there with another value is replaced,
# none is repeated. GRUB (installer boxes) and extlinux (debootstrap images) are both handled.
set -euo pipefail

read -r -a wanted <<< "${BOXSMITH_KERNEL_CMDLINE:?}"
grub_defaults=${BOXSMITH_GRUB_DEFAULTS:-/etc/default/grub}
extlinux_conf=${BOXSMITH_EXTLINUX_CONF:-/boot/extlinux/extlinux.conf}

# merge_params EXISTING: EXISTING without any parameter named in $wanted, then $wanted.
merge_params() {
  local param want kept=()
  for param in $1; do
    for want in "${wanted[@]}"; do
      [ "${param%%=*}" = "${want%%=*}" ] && continue 2
    done
    kept+=("$param")
  done
  kept+=("${wanted[@]}")
  echo "${kept[*]}"
}

if [ -f "$grub_defaults" ]; then
  # Read the value as the shell that update-grub uses would, then write back exactly one line.
  # shellcheck source=/dev/null
  current=$(set +u; . "$grub_defaults"; printf '%s' "${GRUB_CMDLINE_LINUX:-}")
  merged=$(merge_params "$current")
  sed -i -e '/^[[:space:]]*\(export[[:space:]]\+\)\?GRUB_CMDLINE_LINUX=/d' "$grub_defaults"
  printf 'GRUB_CMDLINE_LINUX="%s"\n' "$merged" >> "$grub_defaults"
  update-grub
elif [ -f "$extlinux_conf" ]; then
  tmp=$(mktemp)
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^([[:space:]]*[Aa][Pp][Pp][Ee][Nn][Dd][[:space:]]+)(.*)$ ]]; then
      printf '%s%s\n' "${BASH_REMATCH[1]}" "$(merge_params "${BASH_REMATCH[2]}")"
    else
      printf '%s\n' "$line"
    fi
  done < "$extlinux_conf" > "$tmp"
  cat "$tmp" > "$extlinux_conf"
  rm -f "$tmp"
else
  echo "kernel-cmdline.sh: neither $grub_defaults nor $extlinux_conf exists" >&2
  exit 1
fi
echo "kernel-cmdline.sh: kernel parameters now include: ${wanted[*]}"
