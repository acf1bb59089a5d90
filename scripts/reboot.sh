#!/bin/bash
# Reboot into the kernel kernel-install.sh installed, so the rest of the build (guest tools modules,
# the running-kernel check) sees the kernel the user will get. Packer expects the disconnect.
set -euo pipefail
echo "reboot.sh: rebooting from kernel $(uname -r)"
nohup shutdown -r now > /dev/null 2>&1 &
sleep 60
