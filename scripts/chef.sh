#!/bin/bash
# Chef from packages, never from RubyGems, so the box does not have to carry a system Ruby:
#   distro      the distribution's chef package (pinned when a version is given)
#   vendor-deb  Chef's own omnibus .deb (Ruby embedded under /opt/chef), checked against its sha256
set -euo pipefail

source=${BOXSMITH_CHEF_SOURCE:?}
version=${BOXSMITH_CHEF_VERSION:-}
export DEBIAN_FRONTEND=noninteractive

case "$source" in
  distro)
    apt-get install -y -q --no-install-recommends "chef${version:+=$version}"
    ;;
  vendor-deb)
    url=${BOXSMITH_CHEF_URL:?}
    sha256=${BOXSMITH_CHEF_SHA256:?}
    deb=$(mktemp --suffix=.deb)
    curl -fsSL --retry 5 --retry-delay 5 -o "$deb" "$url"
    echo "$sha256  $deb" | sha256sum -c -
    dpkg -i "$deb"
    rm -f "$deb"
    ;;
  *)
    echo "chef.sh: unknown Chef source '$source'" >&2
    exit 1
    ;;
esac

# The check the smoke test repeats: chef-client exists and a package owns it.
client=$(readlink -f "$(command -v chef-client)")
dpkg -S "$client"
if [ -n "$version" ]; then
  installed=$(dpkg-query -W -f '${Version}' chef)
  case "$installed" in
    "$version"*) ;;
    *) echo "chef.sh: installed chef $installed, not the pinned $version" >&2; exit 1 ;;
  esac
fi
