#!/bin/bash
# VMware guest tools, kept working across kernel upgrades so shared folders survive them.
#   iso            VMware Tools from the ISO Packer uploaded (tools_upload_flavor = linux). Their
#                  installer does not register with DKMS, and their own "automatic kernel modules"
#                  only rebuild at boot, after a boot without shared folders. So this installs a
#                  kernel hook that rebuilds the modules when a kernel is installed: in
#                  /etc/kernel/postinst.d (run by the kernel image's postinst) and in
#                  /etc/kernel/header_postinst.d (run by the headers' postinst), because apt may
#                  configure the headers after the image; the hook waits for the headers it needs.
#   open-vm-tools  the distribution's open-vm-tools; their kernel modules are built by DKMS, whose
#                  own postinst hook already rebuilds them for every new kernel.
set -euo pipefail

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

    hook=$(mktemp)
    cat > "$hook" <<'HOOK'
#!/bin/sh
# Installed by boxsmith: rebuild VMware Tools' kernel modules for a newly installed kernel, so that
# shared folders keep working after a kernel upgrade. $1 is the new kernel's version. Called twice,
# by the kernel image and by its headers; builds once both are there.
set -e
version=${1:?}
[ -x /usr/bin/vmware-config-tools.pl ] || exit 0
[ -e "/lib/modules/$version/build/include" ] || exit 0
[ -e "/lib/modules/$version/misc/.boxsmith-vmware-tools" ] && exit 0
# -d: answer every question with its default; -k: build for this kernel, not the running one.
/usr/bin/vmware-config-tools.pl -d -k "$version"
mkdir -p "/lib/modules/$version/misc"
touch "/lib/modules/$version/misc/.boxsmith-vmware-tools"
HOOK
    for dir in /etc/kernel/postinst.d /etc/kernel/header_postinst.d; do
      install -D -m 0755 "$hook" "$dir/zz-boxsmith-vmware-tools"
    done
    rm -f "$hook"
    ;;
  *)
    echo "vmware-tools.sh: unknown tools source '$tools'" >&2
    exit 1
    ;;
esac
