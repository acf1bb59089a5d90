#!/bin/bash
# Updates: every package the box has, at the newest version its archive (the release, -updates and
# -security) holds tonight, through the build's package cache. A base image or an installer ISO made
# earlier would otherwise ship the updates of the day it was made. Changed configuration files keep
# the version the installer or the image wrote, and nothing asks. The package lists are the ones
# apt.sh refreshed just before (the provisioning plan runs this right after it): a second
# `apt-get update` costs half a minute under emulation and finds nothing newer.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

echo "upgrade.sh: applying the archive's updates"
apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  --no-install-recommends dist-upgrade
echo "upgrade.sh: every package at the newest version of its archive"
