#!/bin/bash
# Docker: from the distribution, or from the apt repository the definition names (its signing key
# checked against the pinned fingerprint before apt trusts it); the vagrant user may use it without
# sudo, and the daemon starts at boot.
set -euo pipefail

read -r -a packages <<< "${BOXSMITH_DOCKER_PACKAGES:?}"
user=${BOXSMITH_VAGRANT_USER:?}
export DEBIAN_FRONTEND=noninteractive

if [ -n "${BOXSMITH_DOCKER_REPO_URL:-}" ]; then
  key=$(mktemp)
  curl -fsSL --retry 5 --retry-delay 5 -o "$key" "${BOXSMITH_DOCKER_REPO_KEY_URL:?}"
  fingerprints=$(gpg --batch --with-colons --with-fingerprint "$key" 2>/dev/null | awk -F: '$1 == "fpr" { print $10 }')
  if ! grep -qx "${BOXSMITH_DOCKER_REPO_KEY_FINGERPRINT:?}" <<< "$fingerprints"; then
    echo "docker.sh: the key at $BOXSMITH_DOCKER_REPO_KEY_URL is not $BOXSMITH_DOCKER_REPO_KEY_FINGERPRINT (got: $fingerprints)" >&2
    exit 1
  fi
  apt-key add "$key"
  rm -f "$key"
  echo "deb $BOXSMITH_DOCKER_REPO_URL ${BOXSMITH_DOCKER_REPO_SUITE:?} ${BOXSMITH_DOCKER_REPO_COMPONENT:?}" \
    > /etc/apt/sources.list.d/docker.list
  apt-get update -q
fi

apt-get install -y -q --no-install-recommends "${packages[@]}"
getent group docker > /dev/null || groupadd --system docker
usermod -a -G docker "$user"

if [ -d /run/systemd/system ]; then
  systemctl enable docker.service
  systemctl restart docker.service
  systemctl is-active docker.service
else
  # Upstart (Ubuntu 12.04/14.04) starts the job at boot by itself.
  service docker restart || service docker.io restart
fi
docker version
