#!/bin/bash
# Package sources: send apt through the build's package cache (apt-cacher-ng on the build host) when
# the build has one, so a second build of a box fetches its packages locally; then refresh the lists.
# cleanup.sh removes the proxy again: the box must not point at a host that users do not have.
set -euo pipefail

proxy_conf=/etc/apt/apt.conf.d/01boxsmith-proxy
if [ -n "${BOXSMITH_APT_PROXY:-}" ]; then
  printf 'Acquire::http::Proxy "%s";\n' "$BOXSMITH_APT_PROXY" > "$proxy_conf"
else
  rm -f "$proxy_conf"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
