#!/bin/bash
# The box as shipped, for its build record: every installed package (name, version, architecture),
# the kernel it runs and the Docker version. Run after the last change to the packages; written to
# /run (a tmpfs, never on the box's disk), from where Packer downloads the files to the build host.
set -euo pipefail

# The folder is settable for the tests, which run this on the build host.
out=${BOXSMITH_MANIFEST_DIR:-/run/boxsmith-manifest}
rm -rf "$out"
install -d -m 0755 "$out"
# Installed packages only: dpkg also knows removed ones whose configuration files remain.
dpkg-query -W -f='${Status}\t${Package}\t${Version}\t${Architecture}\n' |
  awk -F '\t' '$1 ~ / installed$/ { print $2 "\t" $3 "\t" $4 }' | LC_ALL=C sort > "$out/packages.tsv"
uname -r > "$out/kernel"
docker_version=""
if command -v docker > /dev/null; then
  # The daemon's version; Docker before 1.8 (Ubuntu 12.04/14.04) has no --format: its package's.
  docker_version=$(docker version --format '{{.Server.Version}}' 2> /dev/null ||
    dpkg-query -W -f='${Version}\n' docker-ce docker.io docker-engine lxc-docker 2> /dev/null | grep -m 1 . || true)
fi
printf '%s\n' "$docker_version" > "$out/docker"
chmod 0644 "$out"/*
echo "manifest.sh: $(wc -l < "$out/packages.tsv") packages, kernel $(cat "$out/kernel"), Docker ${docker_version:-none}"
