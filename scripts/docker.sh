#!/bin/bash
# Docker: from the distribution, or from the apt repository the definition names (its signing key
# checked against the pinned fingerprint, and apt trusting that key for that repository only); the
# vagrant user may use it without sudo, and the daemon starts at boot.
set -euo pipefail

# Writes to $3 a keyring holding the key file $1's only primary key, which must have the
# fingerprint $2: a file with a second key is refused, since a keyring trusts every key in it.
pinned_keyring() {
  local key=$1 fingerprint=$2 keyring=$3 home primaries
  home=$(mktemp -d)
  primaries=$(gpg --batch --homedir "$home" --with-colons --with-fingerprint "$key" 2>/dev/null |
    awk -F: '$1 == "pub" { want = 1; next } $1 == "fpr" && want { print $10 } { want = 0 }')
  if [ "$primaries" != "$fingerprint" ]; then
    rm -rf "$home"
    echo "docker.sh: the key file must hold exactly the key $fingerprint; it holds: ${primaries//$'\n'/ }" >&2
    return 1
  fi
  gpg --batch --quiet --homedir "$home" --import "$key"
  gpg --batch --homedir "$home" --export "$fingerprint" > "$keyring.new"
  chmod 0644 "$keyring.new"
  mv "$keyring.new" "$keyring"
  rm -rf "$home"
}

main() {
  local packages user
  read -r -a packages <<< "${BOXSMITH_DOCKER_PACKAGES:?}"
  user=${BOXSMITH_VAGRANT_USER:?}
  export DEBIAN_FRONTEND=noninteractive

  if [ -n "${BOXSMITH_DOCKER_REPO_URL:-}" ]; then
    # signed-by (one key for one repository) needs apt 1.1 or later.
    if ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' apt)" ge 1.1; then
      echo "docker.sh: docker.repository needs apt 1.1 or later (signed-by); use the distribution's Docker here" >&2
      exit 1
    fi
    local key keyring=/etc/apt/keyrings/boxsmith-docker.gpg
    key=$(mktemp)
    curl -fsSL --retry 5 --retry-delay 5 -o "$key" "${BOXSMITH_DOCKER_REPO_KEY_URL:?}"
    install -d -m 0755 /etc/apt/keyrings
    pinned_keyring "$key" "${BOXSMITH_DOCKER_REPO_KEY_FINGERPRINT:?}" "$keyring"
    rm -f "$key"
    echo "deb [signed-by=$keyring] $BOXSMITH_DOCKER_REPO_URL ${BOXSMITH_DOCKER_REPO_SUITE:?} ${BOXSMITH_DOCKER_REPO_COMPONENT:?}" \
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
}

# Sourced by the tests, which check pinned_keyring with real gpg; run by Packer as a script.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
