#!/bin/bash
# The packages every box of the definition carries.
set -euo pipefail

read -r -a packages <<< "${BOXSMITH_PACKAGES:-}"
[ "${#packages[@]}" -gt 0 ] || exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${packages[@]}"
