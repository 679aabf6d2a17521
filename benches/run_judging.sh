#!/usr/bin/env bash
# What judging an offline run costs: a pipeline with RUNS daily runs, each pushing a profile of
# a FEATURES-column file (every column a run metric: its null ratio) and COUNTERS counters, so
# every report judges 1 + FEATURES + COUNTERS values against up to 200 earlier runs. Prints the
# time of the profile upload and of the counters report (both judge the run), on SQLite and, when
# it answers on 127.0.0.1:5432, PostgreSQL.
#
# Environment: RUNS (default 60), FEATURES (default 200), COUNTERS (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
RUNS="${RUNS:-60}"
FEATURES="${FEATURES:-200}"
COUNTERS="${COUNTERS:-20}"

echo "== cargo build --release --bin driftd"
cargo build --release --bin driftd
DRIFTD="$CARGO_TARGET_DIR/release/driftd"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/driftd-run-judging.XXXXXX")"
PID=""
cleanup() {
    if [[ -n "$PID" ]]; then kill -KILL "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$WORK/run.csv" "$FEATURES" <<'PY'
import random, sys
path, features = sys.argv[1], int(sys.argv[2])
random.seed(1)
with open(path, "w") as f:
    f.write(",".join(f"f{i}" for i in range(features)) + "\n")
    for _ in range(2000):
        f.write(",".join("" if random.random() < 0.01 else f"{random.gauss(0, 1):.4f}" for _ in range(features)) + "\n")
PY
"$DRIFTD" profile "$WORK/run.csv" --out "$WORK/run.driftprof" >/dev/null

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

scenario() {
    local name="$1" database="$2"
    local p; p="$(port)"
    "$DRIFTD" serve --listen "127.0.0.1:$p" --database "$database" 2>"$WORK/$name.log" &
    PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
    : >"$WORK/$name.profile" ; : >"$WORK/$name.counters"
    for i in $(seq 0 $((RUNS - 1))); do
        local t=$((1793599200 + i * 86400))
        curl -sf -o /dev/null -w '%{time_total}\n' --data-binary @"$WORK/run.driftprof" \
            "http://127.0.0.1:$p/v1/datasets/d/profiles?run_id=r$i&run_time=$t" >>"$WORK/$name.profile"
        local body
        body="$(python3 -c "import json,random,sys; random.seed($i); print(json.dumps({'run_id': 'r$i', 'run_time': $t, 'counters': {f'c{k}': 1000 + random.randint(-20, 20) for k in range($COUNTERS)}}))")"
        curl -sf -o /dev/null -w '%{time_total}\n' -H 'content-type: application/json' -d "$body" \
            "http://127.0.0.1:$p/v1/datasets/d/counters" >>"$WORK/$name.counters"
    done
    kill -TERM "$PID"; wait "$PID" || true; PID=""
    python3 - "$name" "$WORK/$name.profile" "$WORK/$name.counters" <<'PY'
import statistics, sys
name, *files = sys.argv[1:]
for label, path in zip(["profile upload", "counters report"], files):
    t = [float(x) * 1000 for x in open(path)]
    last = t[len(t) // 2:]
    print(f"{name:<10} {label:<16} runs {len(t):>3}  median {statistics.median(last):7.1f} ms  max {max(last):7.1f} ms  (second half, ≥ {len(t) // 2} earlier runs)")
PY
}

echo "== $RUNS runs, $FEATURES features, $COUNTERS counters: $((1 + FEATURES)) run metrics and $COUNTERS counters judged per run"
scenario sqlite "sqlite://$WORK/driftd.db"
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    db="driftd_bench_$$"
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
    scenario postgres "postgres://postgres@127.0.0.1:5432/$db"
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres
fi
