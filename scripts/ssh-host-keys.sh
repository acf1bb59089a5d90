#!/bin/bash
# SSH host keys: every box made from this image must get keys of its own, so the build's keys are
# removed and new ones are made on first boot, before sshd starts. Also run in the chroot of the
# debootstrap base image, so the init system is told by what is installed, not by what runs.
set -euo pipefail

rm -f /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub

if [ -x /bin/systemctl ] || [ -x /usr/bin/systemctl ]; then
  cat > /etc/systemd/system/ssh-host-keys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys missing on first boot
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
  systemctl enable ssh-host-keys.service
else
  # Upstart (Ubuntu 12.04/14.04): a task that runs whenever the ssh job is about to start.
  cat > /etc/init/ssh-host-keys.conf <<'JOB'
description "Generate SSH host keys missing on first boot"
start on starting ssh
task
exec /usr/bin/ssh-keygen -A
JOB
fi
