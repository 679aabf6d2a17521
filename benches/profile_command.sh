#!/usr/bin/env bash
# End-to-end throughput of `driftd profile` on a 1M-row, 15-column table, as Parquet and CSV.
#
#   bash benches/profile_command.sh
#
# Builds driftd and the generator in release, generates (once) bench_1m.parquet and
# bench_1m.csv into ${BENCH_DIR:-$HOME/.cache/driftd/bench}, then runs
# `driftd profile FILE --json > /dev/null` three times per file and prints the best wall time,
# rows/s, values/s (rows x 15 columns) and the peak RSS of the three runs. An untimed run
# first checks the profile's row count and warms the page cache, so every timed run reads
# from memory. If Python's pyarrow is importable, its pyarrow.parquet.read_table time on the
# same file (best of 3, its default threads) is printed for comparison.
#
# DRIFTD_BIN=/path/to/driftd measures another build of driftd (the generator is still built
# here). A file driftd fails on is reported and the script goes on, exiting 1 at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
BENCH_DIR="${BENCH_DIR:-$HOME/.cache/driftd/bench}"
ROWS=1000000
COLUMNS=15
RUNS=3
SEED=1

if [[ ! -x /usr/bin/time ]]; then
    echo "== installing GNU time (/usr/bin/time)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

echo "== cargo build --release --bin driftd --example gen_bench_data"
cargo build --release --bin driftd --example gen_bench_data
DRIFTD="${DRIFTD_BIN:-$CARGO_TARGET_DIR/release/driftd}"
GEN="$CARGO_TARGET_DIR/release/examples/gen_bench_data"

mkdir -p "$BENCH_DIR"
PARQUET="$BENCH_DIR/bench_1m.parquet"
CSV="$BENCH_DIR/bench_1m.csv"
if [[ ! -s "$PARQUET" || ! -s "$CSV" ]]; then
    echo "== generating $ROWS rows (seed $SEED) into $BENCH_DIR"
    # One pass writes both files with the same rows; renamed into place only when complete.
    "$GEN" "$PARQUET.tmp.parquet" "$CSV.tmp.csv" --rows "$ROWS" --seed "$SEED"
    mv "$PARQUET.tmp.parquet" "$PARQUET"
    mv "$CSV.tmp.csv" "$CSV"
fi

TIMES="$(mktemp)"
OUT="$(mktemp)"
ERR="$(mktemp)"
trap 'rm -f "$TIMES" "$OUT" "$ERR"' EXIT
FAILED=0

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# bench NAME FILE: best-of-$RUNS wall time and the largest peak RSS.
bench() {
    local name="$1" file="$2" rows
    if ! "$DRIFTD" profile "$file" --json >"$OUT" 2>"$ERR"; then
        printf '%-8s FAILED: %s\n' "$name" "$(head -c 600 "$ERR")"
        FAILED=1
        return
    fi
    rows="$(grep -m1 -o '"rows": *[0-9]*' "$OUT" | grep -o '[0-9]*$' || true)"
    if [[ "$rows" != "$ROWS" ]]; then
        printf '%-8s FAILED: expected %s rows, the profile has %s\n' "$name" "$ROWS" "${rows:-none}"
        FAILED=1
        return
    fi
    : >"$TIMES"
    for _ in $(seq "$RUNS"); do
        if ! /usr/bin/time -a -o "$TIMES" -f '%e %M' "$DRIFTD" profile "$file" --json \
            >/dev/null 2>"$ERR"; then
            printf '%-8s FAILED on a timed run: %s\n' "$name" "$(head -c 600 "$ERR")"
            FAILED=1
            return
        fi
    done
    awk -v name="$name" -v rows="$ROWS" -v cols="$COLUMNS" -v size="$(stat -c %s "$file")" '
        { if (best == "" || $1 < best) best = $1; if ($2 > rss) rss = $2; all = all " " $1 }
        END {
            if (best <= 0) best = 0.01
            printf "%-8s %7.1f MiB  wall %6.2f s (runs:%s)  %11.0f rows/s  %12.0f values/s  peak RSS %6.1f MiB\n",
                name, size / 1048576, best, all, rows / best, rows * cols / best, rss / 1024
        }' "$TIMES"
}

echo "== $DRIFTD profile FILE --json > /dev/null, best of $RUNS ($ROWS rows x $COLUMNS columns, $(nproc) cores)"
bench parquet "$PARQUET"
bench csv "$CSV"

if python3 -c 'import pyarrow' 2>/dev/null; then
    echo "== pyarrow.parquet.read_table, best of $RUNS (for comparison; decode only, no profiling)"
    /usr/bin/time -o "$TIMES" -f '%M' python3 - "$PARQUET" "$RUNS" "$ROWS" "$COLUMNS" <<'EOF'
import sys, time
import pyarrow, pyarrow.parquet as pq
path, runs, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
walls = []
for _ in range(runs):
    t = time.perf_counter()
    table = pq.read_table(path)
    walls.append(time.perf_counter() - t)
    assert table.num_rows == rows, table.num_rows
    del table
best = min(walls)
print(f"pyarrow {pyarrow.__version__}: wall {best:.3f} s (runs: {' '.join(f'{w:.3f}' for w in walls)})  "
      f"{rows / best:.0f} rows/s  {rows * cols / best:.0f} values/s  "
      f"threads {pyarrow.cpu_count()}", end="")
EOF
    echo "  peak RSS $(mib "$(($(cat "$TIMES") * 1024))") MiB"
else
    echo "== pyarrow not importable; skipping the pyarrow comparison"
fi
exit "$FAILED"
