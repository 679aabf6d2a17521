#!/usr/bin/env bash
# Instructions, not seconds: what `driftd profile`, `driftd compare` and `driftd serve`'s JSON
# ingest cost under valgrind's callgrind, for one build or two side by side. An instruction count
# is the same from run to run whatever else the machine is doing, so two builds can be compared on
# a busy machine where wall times are noise (use serve_load.sh and the criterion benches for
# seconds).
#
#   bash benches/instructions.sh                     # the release build of this checkout
#   BASELINE_BIN=/path/to/old/driftd bash benches/instructions.sh
#
# Workloads (all on files the script writes into a temporary directory):
#   profile   `driftd profile` of a 20,000-row, 15-column CSV                -> instructions/row
#   compare   `driftd compare` of two such files (different seeds)           -> instructions/row
#   ingest    `driftd serve` on SQLite, BATCHES posts of 1,000 NDJSON records (15 features),
#             the queue drained, then SIGTERM; minus the same server started and stopped with
#             no load, so startup and shutdown are not counted              -> instructions/record
# Prints one line per workload and build, and with BASELINE_BIN the change in per cent.
#
# Environment: DRIFTD_BIN (the build measured; default: release build of this checkout, built
# here), BASELINE_BIN (a second build to compare with), BATCHES (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
BATCHES="${BATCHES:-20}"
command -v valgrind >/dev/null || { echo "valgrind is needed (Debian: apt-get install valgrind)" >&2; exit 1; }
if [[ -z "${DRIFTD_BIN:-}" ]]; then
    echo "== cargo build --release --bin driftd"
    cargo build --release --bin driftd
fi
DRIFTD="${DRIFTD_BIN:-$CARGO_TARGET_DIR/release/driftd}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/driftd-instructions.XXXXXX")"
SERVER=""
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    if [[ -n "$SERVER" ]] && kill -0 "$SERVER" 2>/dev/null; then kill -KILL "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$WORK" <<'EOF'
import json, random, sys
work = sys.argv[1]
def row(rng, shift):
    return {
        **{f"num_{i}": round(rng.gauss(shift + i, 1 + i / 10), 4) for i in range(6)},
        **{f"int_{i}": rng.randint(0, 20 + i) for i in range(3)},
        **{f"cat_{i}": f"v{int(rng.paretovariate(1.2)) % (5 + 10 * i)}" for i in range(4)},
        "flag": rng.random() < 0.3,
        "text": "".join(rng.choice("abcdefgh") for _ in range(rng.randint(3, 12))),
    }
for name, seed, shift in (("a", 1, 0.0), ("b", 2, 0.2)):
    rng = random.Random(seed)
    rows = [row(rng, shift) for _ in range(20000)]
    with open(f"{work}/{name}.csv", "w") as f:
        f.write(",".join(rows[0]) + "\n")
        for r in rows:
            f.write(",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in r.values()) + "\n")
rng = random.Random(3)
with open(f"{work}/batch.ndjson", "w") as f:
    for _ in range(1000):
        f.write(json.dumps(row(rng, 0.0)) + "\n")
EOF

# instructions OUT COMMAND...: runs COMMAND under callgrind, prints its total instruction count.
instructions() {
    local out="$1"
    shift
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>"$out.log"
    awk '/^totals:/ { print $2 }' "$out"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# serve_instructions BIN TAG N: a callgrind'ed driftd serve fed N batches; prints its total.
serve_instructions() {
    local bin="$1" tag="$2" n="$3" port
    port="$(free_port)"
    rm -f "$WORK/$tag.db"
    DRIFTD_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/$tag.serve.out" \
        "$bin" serve --listen "127.0.0.1:$port" --database "sqlite://$WORK/$tag.db" \
        >/dev/null 2>"$WORK/$tag.serve.log" &
    SERVER=$!
    for _ in $(seq 600); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    for _ in $(seq "$n"); do
        curl -fsS -o /dev/null -H 'content-type: application/x-ndjson' --data-binary "@$WORK/batch.ndjson" \
            "http://127.0.0.1:$port/v1/datasets/bench/records?stage=online"
    done
    # Accepted is not profiled yet: wait for the queue to drain.
    for _ in $(seq 600); do
        depth="$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^driftd_ingest_queue_depth / { print $2 }')"
        [[ "$depth" == 0 ]] && break
        sleep 0.1
    done
    kill -TERM "$SERVER"
    wait "$SERVER" || { echo "driftd serve ($tag) did not exit 0" >&2; tail -5 "$WORK/$tag.serve.log" >&2; exit 1; }
    SERVER=""
    awk '/^totals:/ { print $2 }' "$WORK/$tag.serve.out"
}

# measure BIN TAG: prints "workload instructions per-unit" lines for one build.
measure() {
    local bin="$1" tag="$2" p c base loaded
    p="$(instructions "$WORK/$tag.profile.out" "$bin" profile "$WORK/a.csv" --json)"
    c="$(instructions "$WORK/$tag.compare.out" "$bin" compare "$WORK/a.csv" "$WORK/b.csv" --json || true)"
    base="$(serve_instructions "$bin" "$tag.idle" 0)"
    loaded="$(serve_instructions "$bin" "$tag.load" "$BATCHES")"
    echo "profile $p $((p / 20000))"
    echo "compare $c $((c / 40000))"
    echo "ingest $((loaded - base)) $(((loaded - base) / (BATCHES * 1000)))"
}

echo "== $DRIFTD"
measure "$DRIFTD" new >"$WORK/new.txt"
if [[ -n "${BASELINE_BIN:-}" ]]; then
    echo "== $BASELINE_BIN (baseline)"
    measure "$BASELINE_BIN" old >"$WORK/old.txt"
fi
echo
printf '%-8s %16s %14s %16s %14s %8s\n' workload instructions per-unit baseline per-unit change
while read -r name total unit; do
    if [[ -f "$WORK/old.txt" ]]; then
        read -r _ old_total old_unit < <(grep "^$name " "$WORK/old.txt")
        change="$(awk -v a="$total" -v b="$old_total" 'BEGIN { printf "%+.2f%%", (a - b) * 100 / b }')"
        printf '%-8s %16s %14s %16s %14s %8s\n' "$name" "$total" "$unit" "$old_total" "$old_unit" "$change"
    else
        printf '%-8s %16s %14s\n' "$name" "$total" "$unit"
    fi
done <"$WORK/new.txt"
