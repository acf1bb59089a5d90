#!/bin/bash
# The running kernel is the one the box boots, and it is new enough (Docker needs >= 3.8).
set -euo pipefail

minimum=${BOXSMITH_KERNEL_MINIMUM:?}
running=$(uname -r)
if ! dpkg --compare-versions "${running%%-*}" ge "$minimum"; then
  echo "kernel-verify.sh: running kernel $running is older than the required $minimum" >&2
  exit 1
fi
echo "kernel-verify.sh: running kernel $running (>= $minimum); command line: $(cat /proc/cmdline)"
