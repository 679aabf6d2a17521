#!/usr/bin/env bash
# Lays out the root filesystem of driftd's container image in DIR: the static binary, the CA
# bundle, a non-root user (UID/GID 65532, no shell, no password) and the two writable places
# (/var/lib/driftd for the SQLite file, /tmp). Used by the Containerfile's build stage; nothing
# else goes into the image.
#
#   bash scripts/container-rootfs.sh DIR DRIFTD_BINARY [CA_BUNDLE]
set -euo pipefail
dir="${1:?usage: $0 DIR DRIFTD_BINARY [CA_BUNDLE]}"
bin="${2:?usage: $0 DIR DRIFTD_BINARY [CA_BUNDLE]}"
ca="${3:-/etc/ssl/certs/ca-certificates.crt}"
[[ -s "$ca" ]] || { echo "no CA bundle at $ca (install ca-certificates)" >&2; exit 1; }

mkdir -p "$dir/usr/local/bin" "$dir/etc/ssl/certs" "$dir/var/lib/driftd" "$dir/tmp"
install -m 0755 "$bin" "$dir/usr/local/bin/driftd"
install -m 0644 "$ca" "$dir/etc/ssl/certs/ca-certificates.crt"
# The login shell is a path that does not exist in the image: there is no shell at all.
printf 'root:x:0:0:root:/root:/sbin/nologin\ndriftd:x:65532:65532:driftd:/var/lib/driftd:/sbin/nologin\n' \
    >"$dir/etc/passwd"
printf 'root:x:0:\ndriftd:x:65532:\n' >"$dir/etc/group"
# Static glibc resolves names with its built-in sources; say which, in this order.
printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
chmod 0644 "$dir/etc/passwd" "$dir/etc/group" "$dir/etc/nsswitch.conf"
chmod 1777 "$dir/tmp"
chmod 0750 "$dir/var/lib/driftd"
# The one directory driftd owns (the image's COPY keeps owners).
chown 65532:65532 "$dir/var/lib/driftd"
