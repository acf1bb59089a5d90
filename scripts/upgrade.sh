#!/bin/bash
# Updates: every package the box has, at the newest version its archive (the release, -updates and
# -security) holds tonight, through the build's package cache that apt.sh set. A base image or an
# installer ISO made earlier would otherwise ship the updates of the day it was made. Changed
# configuration files keep the version the installer or the image wrote, and nothing asks.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

apt-get update -q
pending=$(apt-get -s -o Debug::NoLocking=1 dist-upgrade | grep -c '^Inst ' || true)
echo "upgrade.sh: $pending packages to upgrade or install"
apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  --no-install-recommends dist-upgrade
echo "upgrade.sh: up to date ($(apt-get -s dist-upgrade | grep -c '^Inst ' || true) packages held back)"
