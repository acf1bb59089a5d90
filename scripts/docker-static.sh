#!/bin/bash
# Docker from its static binaries (docker.source: static), for releases Docker no longer packages:
# the .tgz that Packer uploaded (fetched and verified on the build host) is checked against its
# pinned sha256 once more, its binaries go to /usr/local/bin, and an init job runs dockerd: upstart
# (Ubuntu 12.04/14.04), mounting the cgroup hierarchies first as cgroupfs-mount would, or systemd.
# The vagrant user may use Docker without sudo; the daemon starts at boot.
set -euo pipefail

# Refuses the file $1 unless its sha256 is $2.
verify_sha256() {
  local file=$1 expected=$2 actual
  actual=$(sha256sum "$file" | cut -d ' ' -f 1)
  if [ "$actual" != "$expected" ]; then
    echo "docker-static.sh: $file is not the pinned Docker .tgz (expected sha256 $expected, it is $actual): refused" >&2
    return 1
  fi
}

# Installs the files under docker/ in the .tgz $1 (docker, dockerd, containerd, runc, docker-init,
# docker-proxy: their names vary by version) into the folder $2.
install_binaries() {
  local tgz=$1 bindir=$2 unpacked file
  unpacked=$(mktemp -d)
  tar -xzf "$tgz" -C "$unpacked"
  for file in docker dockerd; do
    if [ ! -f "$unpacked/docker/$file" ]; then
      echo "docker-static.sh: $tgz has no docker/$file: it is not Docker's static binaries" >&2
      rm -rf "$unpacked"
      return 1
    fi
  done
  install -d -m 0755 "$bindir"
  for file in "$unpacked"/docker/*; do
    if [ -f "$file" ]; then install -m 0755 "$file" "$bindir/"; fi
  done
  rm -rf "$unpacked"
}

# Writes the daemon's options file $1, read by either init job; an existing one is kept.
write_defaults() {
  local file=$1
  [ -e "$file" ] && return 0
  cat > "$file" << 'EOF'
# Options for dockerd (Docker's static binaries, installed by boxsmith), read by its init job.
# Example: DOCKER_OPTS="--storage-driver=aufs --dns 8.8.8.8"
DOCKER_OPTS=""
EOF
}

# Writes the upstart job $1 running $2/dockerd.
write_upstart_job() {
  local file=$1 bindir=$2
  cat > "$file" << EOF
# Docker daemon: Docker's static binaries, installed by boxsmith (scripts/docker-static.sh).
description "Docker daemon"

start on (local-filesystems and net-device-up IFACE!=lo)
stop on runlevel [!2345]

# dockerd finds docker-containerd and docker-runc (or containerd and runc) on PATH.
env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
limit nofile 524288 1048576
respawn
kill timeout 20

pre-start script
	# upstart mounts no cgroup hierarchy: mount each one the kernel has, as cgroupfs-mount does,
	# unless fstab or a package (cgroup-lite) sees to it.
	if grep -v '^#' /etc/fstab | grep -q cgroup || [ ! -e /proc/cgroups ] || [ ! -d /sys/fs/cgroup ]; then
		exit 0
	fi
	if ! mountpoint -q /sys/fs/cgroup; then
		mount -t tmpfs -o uid=0,gid=0,mode=0755 cgroup /sys/fs/cgroup
	fi
	cd /sys/fs/cgroup
	awk '!/^#/ { if (\$4 == 1) print \$1 }' /proc/cgroups | while read -r sys; do
		mkdir -p "\$sys"
		if ! mountpoint -q "\$sys"; then
			mount -n -t cgroup -o "\$sys" cgroup "\$sys" || rmdir "\$sys" || true
		fi
	done
end script

script
	DOCKER_OPTS=
	if [ -f /etc/default/docker ]; then
		. /etc/default/docker
	fi
	exec $bindir/dockerd \$DOCKER_OPTS
end script

# "started" (and so \`service docker start\`) only once the API socket is there.
post-start script
	for _ in \$(seq 1 60); do
		if [ -S /var/run/docker.sock ]; then
			exit 0
		fi
		sleep 1
	done
	echo "dockerd opened no /var/run/docker.sock within 60 s" >&2
	exit 1
end script
EOF
}

# Writes the systemd unit $1 running $2/dockerd.
write_systemd_unit() {
  local file=$1 bindir=$2
  cat > "$file" << EOF
# Docker's static binaries, installed by boxsmith (scripts/docker-static.sh).
[Unit]
Description=Docker daemon
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=$bindir/dockerd \$DOCKER_OPTS
ExecReload=/bin/kill -s HUP \$MAINPID
LimitNOFILE=1048576
LimitNPROC=infinity
Delegate=yes
KillMode=process
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF
}

main() {
  local packages user server
  local tgz=${BOXSMITH_DOCKER_STATIC_TGZ:?} version=${BOXSMITH_DOCKER_STATIC_VERSION:?}
  # Where the files go: / in the guest; a temporary folder when the tests run this.
  local root=${BOXSMITH_DOCKER_ROOT:-}
  local bindir=$root/usr/local/bin
  read -r -a packages <<< "${BOXSMITH_DOCKER_PACKAGES:-}"
  user=${BOXSMITH_VAGRANT_USER:?}
  export DEBIAN_FRONTEND=noninteractive

  # What the binaries need beside them (iptables, aufs-tools, ...).
  if [ "${#packages[@]}" -gt 0 ]; then apt-get install -y -q --no-install-recommends "${packages[@]}"; fi
  verify_sha256 "$tgz" "${BOXSMITH_DOCKER_STATIC_SHA256:?}"
  install_binaries "$tgz" "$bindir"
  rm -f "$tgz"
  getent group docker > /dev/null || groupadd --system docker
  usermod -a -G docker "$user"
  write_defaults "$root/etc/default/docker"

  if [ -d "$root/run/systemd/system" ]; then
    write_systemd_unit "$root/etc/systemd/system/docker.service" "$bindir"
    systemctl daemon-reload
    systemctl enable docker.service
    systemctl restart docker.service
    systemctl is-active docker.service
  else
    write_upstart_job "$root/etc/init/docker.conf" "$bindir"
    initctl reload-configuration
    stop docker 2> /dev/null || true
    start docker
    # "docker start/running, process N": what the smoke test's "Docker daemon active" looks for.
    status docker
  fi

  server=$("$bindir/docker" version --format '{{.Server.Version}}')
  if [ "$server" != "$version" ]; then
    echo "docker-static.sh: the daemon says it is Docker $server, not the pinned $version" >&2
    exit 1
  fi
  # The storage driver Docker chose (aufs where the kernel has it) and the cgroup setup, for the log.
  "$bindir/docker" info 2> /dev/null | grep -E '^(Storage Driver|Cgroup Driver|Kernel Version):' || true
}

# Sourced by the tests, which run its functions in a temporary folder; run by Packer as a script.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
