#!/usr/bin/env bash
# Builds the distributed driftd: the `dist` profile (stripped, fat LTO), statically linked
# against glibc (`-C target-feature=+crt-static`), so the binary runs on a system with nothing
# else installed — a `FROM scratch` image, a distroless base, any x86-64 Linux.
#
#   bash scripts/build-static.sh [--out DIR] [--check-bare]
#
# Prints the binary's path and size, and checks that it is static (no NEEDED entry, `ldd` says
# "statically linked") and that it starts (`driftd --version`). With --out DIR the
# binary is also copied to DIR/driftd. With --check-bare (as root) it also profiles the sample
# file inside an empty root directory holding nothing but the binary and the file (chroot). The first build takes a while (~20 min on 2 cores):
# LTO over every crate in one codegen unit.
#
# Why glibc and not musl: this is what the stable toolchain builds with no extra target
# installed. glibc's name lookups (getaddrinfo) in a static binary use the `files` and `dns`
# sources built into libc since glibc 2.34; nothing is loaded at run time, so the image needs no
# shared libraries (an /etc/nsswitch.conf saying `hosts: files dns` keeps the order explicit).
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
check_bare=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --check-bare) check_bare=1; shift ;;
        *) echo "usage: $0 [--out DIR] [--check-bare]" >&2; exit 2 ;;
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
# The getrandom crate finds libc's getrandom() with dlsym, which finds nothing in a static
# binary, and then falls back to reading /dev/random and /dev/urandom: on a root without /dev the
# first random number (a span id, a token) panics. linux_getrandom links getrandom() directly
# (glibc 2.25 and later, Linux 3.17 and later), so no file is needed.
echo "== cargo build --profile dist --target $target (static)"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
    cargo build --locked --profile dist --target "$target" --bin driftd

bin="$CARGO_TARGET_DIR/$target/dist/driftd"
# A static-pie binary (what crt-static gives on glibc) makes ldd print "statically linked";
# a plain static one "not a dynamic executable". Anything else lists libraries.
linkage="$(ldd "$bin" 2>&1 || true)"
if ! grep -qE 'statically linked|not a dynamic executable' <<<"$linkage"; then
    echo "$bin is dynamically linked:" >&2
    echo "$linkage" >&2
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
echo "ldd: $(echo $linkage)"
if [[ -n "$out" ]]; then
    mkdir -p "$out"
    cp "$bin" "$out/driftd"
    echo "copied to $out/driftd"
fi
if [[ -n "$check_bare" ]]; then
    bare="$(mktemp -d)"
    trap 'rm -rf "$bare"' EXIT
    cp "$bin" "$bare/driftd"
    cp samples/search_ranking_inputs.csv "$bare/sample.csv"
    echo "== in an empty root ($(ls "$bare" | tr '\n' ' ')): driftd profile /sample.csv --json"
    rows="$(chroot "$bare" /driftd profile /sample.csv --json | grep -o '"rows": *[0-9]*' | grep -o '[0-9]*$')"
    expected="$(($(wc -l <samples/search_ranking_inputs.csv) - 1))"
    if [[ "$rows" != "$expected" ]]; then
        echo "profiled $rows rows in the empty root, expected $expected" >&2
        exit 1
    fi
    echo "profiled $rows rows with nothing but the binary"
    # The daemon too: SQLite in the empty root, a batch of records (spans draw random ids),
    # a clean stop on SIGTERM.
    port="${DRIFTD_BARE_PORT:-18471}"
    chroot "$bare" /driftd serve --listen "127.0.0.1:$port" --database sqlite:///driftd.db \
        >"$bare/serve.log" 2>&1 &
    serve=$!
    trap 'kill "$serve" 2>/dev/null; rm -rf "$bare"' EXIT
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    status="$(printf '{"records":[{"x":1.5,"c":"a"},{"x":2.5,"c":"b"}]}' |
        curl -s -o /dev/null -w '%{http_code}' -XPOST -H 'content-type: application/json' \
            --data-binary @- "http://127.0.0.1:$port/v1/datasets/bare/records?stage=online" || true)"
    kill -TERM "$serve"
    code=0
    wait "$serve" || code=$?
    if [[ "$status" != 202 || "$code" != 0 ]]; then
        echo "serve in the empty root: ingest answered ${status:-nothing}, exit status $code:" >&2
        tail -n 20 "$bare/serve.log" >&2
        exit 1
    fi
    echo "served in the empty root: /readyz, ingest 202, clean exit on SIGTERM"
fi
