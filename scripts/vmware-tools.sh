#!/bin/bash
# VMware guest tools, kept working across kernel upgrades so shared folders survive them.
#   iso            VMware Tools from the ISO Packer uploaded (tools_upload_flavor = linux). Their
#                  installer does not register with DKMS, and their own "automatic kernel modules"
#                  only rebuild at boot, after a boot without shared folders. So this installs a
#                  kernel hook that rebuilds the modules when a kernel is installed: in
#                  /etc/kernel/postinst.d (run by the kernel image's postinst) and in
#                  /etc/kernel/header_postinst.d (run by the headers' postinst). apt configures
#                  the two in either order, so the hook builds from whichever comes second: when
#                  the other package is already configured.
#   open-vm-tools  the distribution's open-vm-tools; their kernel modules are built by DKMS, whose
#                  own postinst hook already rebuilds them for every new kernel.
set -euo pipefail

# The kernel hook, in /etc/kernel/postinst.d and /etc/kernel/header_postinst.d. A function of its
# own so the tests install exactly this hook in a booted box (with a stand-in for VMware's tool).
install_rebuild_hook() {
  local hook dir
  hook=$(mktemp)
  cat > "$hook" <<'HOOK'
#!/bin/sh
# Installed by boxsmith: rebuild VMware Tools' kernel modules for a newly installed kernel, so that
# shared folders keep working after a kernel upgrade. $1 is the new kernel's version. Called by the
# kernel image's postinst and by its headers' postinst, in whichever order apt configures them:
# it builds once, from the second, when the other package is configured and the headers are there.
set -e
version=${1:?}
[ -x /usr/bin/vmware-config-tools.pl ] || exit 0
[ -e "/lib/modules/$version/misc/.boxsmith-vmware-tools" ] && exit 0
[ -e "/lib/modules/$version/build/include" ] || exit 0
case "$0" in
  */header_postinst.d/*) other=/boot/vmlinuz-$version ;;
  *) other=/lib/modules/$version/build ;;
esac
# The package that owns the other half; not configured yet means its own postinst calls this later.
owner=$(dpkg-query -S "$other" 2> /dev/null | sed -n '1s/[:,].*//p')
[ -n "$owner" ] || exit 0
[ "$(dpkg-query -W -f='${Status}' "$owner" 2> /dev/null)" = "install ok installed" ] || exit 0
# -d: answer every question with its default; -k: build for this kernel, not the running one.
/usr/bin/vmware-config-tools.pl -d -k "$version"
mkdir -p "/lib/modules/$version/misc"
touch "/lib/modules/$version/misc/.boxsmith-vmware-tools"
HOOK
  for dir in /etc/kernel/postinst.d /etc/kernel/header_postinst.d; do
    install -D -m 0755 "$hook" "$dir/zz-boxsmith-vmware-tools"
  done
  rm -f "$hook"
}

main() {
  local tools iso mnt work
  tools=${BOXSMITH_VMWARE_TOOLS:?}
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends build-essential "linux-headers-$(uname -r)"

  case "$tools" in
    open-vm-tools)
      apt-get install -y -q --no-install-recommends open-vm-tools
      # Releases whose kernels lack the vmhgfs driver ship it as DKMS source.
      if apt-cache show open-vm-dkms > /dev/null 2>&1; then
        apt-get install -y -q --no-install-recommends dkms open-vm-dkms
      fi
      ;;
    iso)
      iso=/tmp/vmware-tools-linux.iso
      mnt=$(mktemp -d)
      work=$(mktemp -d)
      mount -o loop,ro "$iso" "$mnt"
      tar -xzf "$mnt"/VMwareTools-*.tar.gz -C "$work"
      umount "$mnt"
      "$work/vmware-tools-distrib/vmware-install.pl" --default
      rm -rf "$mnt" "$work" "$iso"

      install_rebuild_hook
      ;;
    *)
      echo "vmware-tools.sh: unknown tools source '$tools'" >&2
      exit 1
      ;;
  esac
}

# Sourced by the tests, which install the hook in a booted box; run by Packer as a script.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
