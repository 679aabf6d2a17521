#!/usr/bin/env bash
# End-to-end speed of `driftd compare`:
#   1. two 1M-row, 15-column Parquet files (seeds 1 and 2 of benches' generator), and the
#      same pair as CSV;
#   2. two profile files of 1,000 features each (600 numeric, 400 string), as a pipeline step
#      and a sidecar would upload them.
# Prints the best wall time of 5 runs (3 for the 1M-row files) and the peak RSS.
#
#   bash benches/compare_command.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
BENCH_DIR="${BENCH_DIR:-$HOME/.cache/driftd/bench}"
if [[ ! -x /usr/bin/time ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
cargo build --release --bin driftd --example gen_bench_data
DRIFTD="${DRIFTD_BIN:-$CARGO_TARGET_DIR/release/driftd}"
GEN="$CARGO_TARGET_DIR/release/examples/gen_bench_data"
mkdir -p "$BENCH_DIR"

for seed in 1 2; do
    base="$BENCH_DIR/bench_1m_seed$seed"
    if [[ ! -s "$base.parquet" || ! -s "$base.csv" ]]; then
        "$GEN" "$base.tmp.parquet" "$base.tmp.csv" --rows 1000000 --seed "$seed"
        mv "$base.tmp.parquet" "$base.parquet"
        mv "$base.tmp.csv" "$base.csv"
    fi
done

WIDE_A="$BENCH_DIR/wide_a.driftprof"
WIDE_B="$BENCH_DIR/wide_b.driftprof"
if [[ ! -s "$WIDE_A" || ! -s "$WIDE_B" ]]; then
    for side in a b; do
        python3 - "$BENCH_DIR/wide_$side.csv" "$side" <<'PY'
import csv, random, sys
path, side = sys.argv[1], sys.argv[2]
rng = random.Random(side)
shift = 0.0 if side == "a" else 0.1
cats = [f"cat-{i}" for i in range(50)]
with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([f"n{i:03}" for i in range(600)] + [f"s{i:03}" for i in range(400)])
    for _ in range(5000):
        w.writerow([f"{rng.gauss(shift, 1):.6f}" for _ in range(600)]
                   + [cats[min(49, int(rng.random() ** 2 * 50))] for _ in range(400)])
PY
        "$DRIFTD" profile "$BENCH_DIR/wide_$side.csv" --dataset wide --out "$BENCH_DIR/wide_$side.driftprof" >/dev/null
    done
fi

TIMES="$(mktemp)"
trap 'rm -f "$TIMES"' EXIT
# bench NAME RUNS A B: best wall time and peak RSS of `driftd compare A B --json`.
bench() {
    local name="$1" runs="$2" a="$3" b="$4" status
    : >"$TIMES"
    for _ in $(seq "$runs"); do
        status=0
        /usr/bin/time -a -o "$TIMES" -f '%e %M' "$DRIFTD" compare "$a" "$b" --json >/dev/null || status=$?
        if [[ $status -ge 2 ]]; then
            echo "$name: driftd compare failed ($status)"
            exit 1
        fi
    done
    # GNU time appends "Command exited with non-zero status 1" for drift: skip such lines.
    awk -v name="$name" '$1 ~ /^[0-9.]+$/ { if (best == "" || $1 < best) best = $1; if ($2 > rss) rss = $2 }
        END { printf "%-34s best %6.3f s   peak RSS %6.1f MiB\n", name, best, rss / 1024 }' "$TIMES"
}

bench "1M rows x 15 columns, Parquet" 3 "$BENCH_DIR/bench_1m_seed1.parquet" "$BENCH_DIR/bench_1m_seed2.parquet"
bench "1M rows x 15 columns, CSV" 3 "$BENCH_DIR/bench_1m_seed1.csv" "$BENCH_DIR/bench_1m_seed2.csv"
bench "profile files, 1,000 features" 5 "$WIDE_A" "$WIDE_B"
