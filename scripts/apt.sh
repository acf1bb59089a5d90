#!/bin/bash
# Package sources: send apt through the build's package cache (apt-cacher-ng on the build host) when
# the build has one, so a second build of a box fetches its packages locally; then refresh the lists.
# cleanup.sh removes the proxy again: the box must not point at a host that users do not have.
set -euo pipefail

proxy_conf=/etc/apt/apt.conf.d/01boxsmith-proxy
if [ -n "${BOXSMITH_APT_PROXY:-}" ]; then
  # Retries: should the cache die mid-build, boxsmith starts it again on the same port, and apt
  # (which waits longer before each retry from apt 2.3 on) gets through instead of failing the build.
  printf 'Acquire::http::Proxy "%s";\nAcquire::Retries "5";\n' "$BOXSMITH_APT_PROXY" > "$proxy_conf"
else
  rm -f "$proxy_conf"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
