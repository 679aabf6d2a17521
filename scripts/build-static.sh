#!/usr/bin/env bash
# Builds the distributed driftd: the `dist` profile (stripped, fat LTO), statically linked
# against glibc (`-C target-feature=+crt-static`), so the binary runs on a system with nothing
# else installed — a `FROM scratch` image, a distroless base, any x86-64 Linux.
#
#   bash scripts/build-static.sh [--out DIR]
#
# Prints the binary's path and size, and checks that it is static (no dynamic section, `ldd`
# says "not a dynamic executable") and that it starts (`driftd --version`). With --out DIR the
# binary is also copied to DIR/driftd. The first build takes a while (~20 min on 2 cores):
# LTO over every crate in one codegen unit.
#
# Why glibc and not musl: this is what the stable toolchain builds with no extra target
# installed. glibc's name lookups (getaddrinfo) in a static binary use the `files` and `dns`
# sources built into libc since glibc 2.34; nothing is loaded at run time, so the image needs no
# shared libraries (an /etc/nsswitch.conf saying `hosts: files dns` keeps the order explicit).
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
    esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
target="$(rustc -vV | sed -n 's/^host: //p')"
case "$target" in
    *-linux-gnu) ;;
    *) echo "a static glibc build needs a *-linux-gnu host, not $target" >&2; exit 2 ;;
esac

# An explicit --target keeps RUSTFLAGS away from build scripts and proc macros, which must stay
# dynamic: only the driftd binary is linked statically.
echo "== cargo build --profile dist --target $target (static)"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --locked --profile dist --target "$target" --bin driftd

bin="$CARGO_TARGET_DIR/$target/dist/driftd"
if ldd "$bin" >/dev/null 2>&1; then
    echo "$bin is dynamically linked:" >&2
    ldd "$bin" >&2
    exit 1
fi
if readelf --dynamic "$bin" 2>/dev/null | grep -q NEEDED; then
    echo "$bin needs shared libraries:" >&2
    readelf --dynamic "$bin" | grep NEEDED >&2
    exit 1
fi
"$bin" --version
printf '%s  %s bytes (%.1f MiB), static\n' "$bin" "$(stat -c %s "$bin")" \
    "$(awk -v b="$(stat -c %s "$bin")" 'BEGIN { print b / 1048576 }')"
if [[ -n "$out" ]]; then
    mkdir -p "$out"
    cp "$bin" "$out/driftd"
    echo "copied to $out/driftd"
fi
