#!/bin/bash
# The guest's files, for the build record: the bytes its disk filesystems use (df), and the same
# files as one tar, compressed as the box is. That is the size no box of this guest can beat; the
# box's ratio to it says what the disk image still carries (unreturned free space, fragmentation).
# Run last, after minimize.sh, on the guest as shipped.
#   - BOXSMITH_CONTENT_SINK=virtio:NAME (QEMU): the tar goes to the virtio-serial port
#     /dev/virtio-ports/NAME, which QEMU passes to boxsmith on the build host; it counts and
#     compresses it there (compressing ~1 GB in a guest under software emulation takes minutes,
#     on the host seconds; the port carries it as fast as the guest reads its disk).
#   - BOXSMITH_CONTENT_SINK=host:port:token (VirtualBox): the same over TCP; the NAT reaches the
#     host's loopback as 10.0.2.2. The token tells boxsmith's listener this stream is its build's.
#   - Without it (VMware's NAT does not reach the host's loopback), the guest compresses the tar
#     itself with BOXSMITH_CONTENT_COMPRESSOR (e.g. "gzip -6").
# Written to the manifest folder (/run, a tmpfs) as content.tsv; Packer downloads it.
set -euo pipefail

out=${BOXSMITH_MANIFEST_DIR:-/run/boxsmith-manifest}
install -d -m 0755 "$out"

# The disk's filesystems, each once (a bind mount names its device again); the tests name folders.
if [ -n "${BOXSMITH_CONTENT_PATHS:-}" ]; then
  read -r -a roots <<< "$BOXSMITH_CONTENT_PATHS"
else
  mapfile -t roots < <(findmnt -rn -t ext2,ext3,ext4,xfs,btrfs -o TARGET,SOURCE | awk '{ sub(/\[.*/, "", $2) } !seen[$2]++ { print $1 }')
fi
[ "${#roots[@]}" -gt 0 ] || { echo "content-size.sh: no disk filesystem mounted" >&2; exit 1; }
used=$(df -B1 --output=used "${roots[@]}" | awk 'NR > 1 { sum += $1 } END { printf "%d\n", sum }')

totals=$(mktemp)
trap 'rm -f "$totals"' EXIT
# GNU tar exits 1 for a file that changed while read (a log): the tar is still whole.
archive() {
  local status=0
  tar --create --file=- --one-file-system --numeric-owner --totals "${roots[@]}" 2> "$totals" || status=$?
  grep -v -e '^tar: Removing leading' -e 'socket ignored$' -e '^Total bytes written' "$totals" >&2 || true
  [ "$status" -le 1 ] || { echo "content-size.sh: tar failed (exit $status)" >&2; return "$status"; }
}

{
  printf 'used_bytes\t%s\n' "$used"
  if [[ ${BOXSMITH_CONTENT_SINK:-} == virtio:* ]]; then
    port="${BOXSMITH_VIRTIO_PORTS:-/dev/virtio-ports}/${BOXSMITH_CONTENT_SINK#virtio:}"
    [ -e "$port" ] || { echo "content-size.sh: no virtio-serial port $port" >&2; exit 1; }
    archive > "$port"
    printf 'sent_to\t%s\n' "$port"
  elif [ -n "${BOXSMITH_CONTENT_SINK:-}" ]; then
    host=${BOXSMITH_CONTENT_SINK%%:*}
    rest=${BOXSMITH_CONTENT_SINK#*:}
    port=${rest%%:*}
    token=${rest#*:}
    exec 3> "/dev/tcp/$host/$port"
    printf '%s\n' "$token" >&3
    archive >&3
    exec 3>&-
    printf 'sent_to\t%s:%s\n' "$host" "$port"
  else
    read -r -a compressor <<< "${BOXSMITH_CONTENT_COMPRESSOR:-gzip -6}"
    command -v "${compressor[0]}" > /dev/null || { echo "content-size.sh: ${compressor[0]} is not installed in the guest" >&2; exit 1; }
    compressed=$(archive | "${compressor[@]}" | wc -c)
    printf 'tar_compressed_bytes\t%s\ncompressor\t%s\n' "$compressed" "${compressor[*]}"
  fi
} > "$out/content.tsv.partial"
tar_bytes=$(sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p' "$totals")
[ -n "$tar_bytes" ] || { echo "content-size.sh: tar did not say how many bytes it wrote" >&2; exit 1; }
printf 'tar_bytes\t%s\n' "$tar_bytes" >> "$out/content.tsv.partial"
mv "$out/content.tsv.partial" "$out/content.tsv"
chmod 0644 "$out/content.tsv"
echo "content-size.sh: $(tr '\t\n' '= ' < "$out/content.tsv")"
