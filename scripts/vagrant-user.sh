#!/bin/bash
# The vagrant user as Vagrant expects it of a base box: passwordless sudo, Vagrant's insecure public
# key (uploaded by Packer to /tmp/vagrant-insecure.pub; `vagrant up` swaps it for a fresh key), and an
# sshd that does not stall logins on reverse DNS.
set -euo pipefail

user=${BOXSMITH_VAGRANT_USER:?}
home=$(getent passwd "$user" | cut -d: -f6)
[ -n "$home" ] || { echo "vagrant-user.sh: no user $user" >&2; exit 1; }

sudoers=/etc/sudoers.d/$user
printf '%s ALL=(ALL) NOPASSWD: ALL\nDefaults:%s !requiretty\n' "$user" "$user" > "$sudoers.tmp"
chmod 0440 "$sudoers.tmp"
visudo -cf "$sudoers.tmp"
mv "$sudoers.tmp" "$sudoers"

install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
install -m 0600 -o "$user" -g "$user" /tmp/vagrant-insecure.pub "$home/.ssh/authorized_keys"
rm -f /tmp/vagrant-insecure.pub

sshd_config=/etc/ssh/sshd_config
sed -i -e '/^#\?UseDNS/d' "$sshd_config"
echo 'UseDNS no' >> "$sshd_config"
