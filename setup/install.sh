#!/bin/bash
# Everything boxsmith needs on a Debian 12 machine: Debian's packages (Packer, QEMU, Vagrant and its
# libvirt provider, the validators, debootstrap and the package cache) and the npm dependencies.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  packer                                   # builds the boxes (Debian ships 1.6.6)
  qemu-system-x86 qemu-utils               # the hypervisor that runs everywhere, and qemu-img
  tabix pigz zstd xz-utils                 # boxes compressed on all cores (gzip by tabix's bgzip, on libdeflate; zstd -T0, xz -T0) and read back
  vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base iptables  # smoke tests, as users run boxes
  debootstrap fdisk e2fsprogs syslinux extlinux syslinux-common  # the Debian base image, made on the host
  libguestfs-tools                         # its LVM volumes, made in libguestfs's appliance (the host needs no device-mapper)
  apt-cacher-ng                            # the package cache shared by builds
  shellcheck ruby debconf-utils xorriso    # validators and ISO tools
  libxml2-utils                            # xmllint: the smoke test's JUnit XML is checked with it
  nginx-light                              # the web server docs/hosting.md configures (`boxsmith nginx-conf`); tests run it in front of a catalog tree
  python3-junitparser                      # a real JUnit consumer: the tests read the nightly report's JUnit XML with it
  chromium                                 # headless, the tests open the nightly HTML report in it (console, DOM, screenshot)
  gdb psmisc procps                        # diagnostics of hung processes
  rclone                                   # publish --to rclone:REMOTE:PATH (S3, GCS, Azure, B2, SFTP, WebDAV, ...) and mirror --to rclone:
  openssh-server                           # tests only: a throw-away sshd on 127.0.0.1 is the rclone tests' SFTP remote
  debian-archive-keyring                   # debootstrap checks the Debian archive with it (--keyring)
  debian-installer-12-netboot-amd64 isolinux  # tests only: d-i's kernel and initrd, booted by isolinux, make the stand-in Ubuntu server ISO
)
# Signs Ubuntu's SHA256SUMS, which `checksums` verifies before trusting; Debian 12 does not carry it
# (`checksums` then says the keyring is missing and changes nothing).
# (`apt-cache show` also answers for a name other packages only mention: ask for an install candidate.)
candidate=$(apt-cache policy ubuntu-keyring 2>/dev/null | sed -n 's/^ *Candidate: //p')
if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then packages+=(ubuntu-keyring); fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -q
  # apt-cacher-ng asks whether to tunnel https; the services it and libvirt start are boxsmith's to run.
  echo 'apt-cacher-ng apt-cacher-ng/tunnelenable boolean false' | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
