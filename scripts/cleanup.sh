#!/bin/bash
# Clean-up: nothing of the build host and nothing one machine must not share with its clones stays
# in the box (the build's password file, package proxy, package caches and lists, logs, DHCP leases,
# machine id, udev's remembered MAC addresses).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# vagrant's password, which sudo -S read until vagrant-user.sh granted NOPASSWD sudo: gone before
# minimize.sh trims the blocks it freed.
rm -f "${BOXSMITH_SUDO_PASSWORD_FILE:?}"

apt-get autoremove -y -q --purge
apt-get clean
rm -f /etc/apt/apt.conf.d/01boxsmith-proxy
# debian-installer writes its proxy (mirror/http/proxy) into apt.conf.
[ -f /etc/apt/apt.conf ] && sed -i '/Acquire::http::Proxy/d' /etc/apt/apt.conf
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

find /var/log -type f -exec truncate -s 0 {} +
rm -rf /tmp/* /var/tmp/*
rm -f /var/lib/dhcp/*.leases /var/lib/dhcp/dhclient.* /root/.bash_history
# An empty machine-id is made anew on each clone's first boot.
[ -f /etc/machine-id ] && truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
# Ubuntu 12.04/14.04 pin eth0 to the build VM's MAC address; a directory in its place stops that.
rm -rf /etc/udev/rules.d/70-persistent-net.rules
mkdir -p /etc/udev/rules.d/70-persistent-net.rules
