#!/usr/bin/env bash
# Memory of `driftd serve` with 1, 10 and 100 datasets of 1,000 high-cardinality features.
#
#   bash benches/memory.sh
#
# Builds driftd in release, then for each dataset count starts a fresh `driftd serve` (its own
# SQLite file, 10-minute windows so that every window stays open) and posts to every dataset
# BATCHES batches of 100 records × 1,000 string features, every value new (ids, free text), so
# each feature's sketches reach their full size. Printed per run: batches accepted and refused
# (503: the memory budget), what driftd's estimate says its open windows hold
# (driftd_memory_open_windows_bytes), and its RSS (VmRSS) and peak RSS (VmHWM) from
# /proc/PID/status after the load. Each count runs twice: with the default max_memory
# (256 MiB) and with the budget lifted (MAX_MEMORY_OFF, default 64 GiB), to show what the
# budget saves. Environment: BATCHES (default 6), COUNTS (default "1 10 100"), DRIFTD_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
BATCHES="${BATCHES:-6}"
COUNTS="${COUNTS:-1 10 100}"
MAX_MEMORY_OFF="${MAX_MEMORY_OFF:-68719476736}"

if [[ -z "${DRIFTD_BIN:-}" ]]; then
    echo "== cargo build --release --bin driftd"
    cargo build --release --locked --bin driftd
fi
DRIFTD="${DRIFTD_BIN:-$CARGO_TARGET_DIR/release/driftd}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/driftd-memory.XXXXXX")"
PID=""
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# run DATASETS MAX_MEMORY LABEL: one driftd, the load, one line of figures.
run() {
    local datasets="$1" max_memory="$2" label="$3" port
    port="$(free_port)"
    env -u DRIFTD_BIN DRIFTD_LOG=warn DRIFTD_WINDOW=10m DRIFTD_MAX_MEMORY="$max_memory" \
        "$DRIFTD" serve --listen "127.0.0.1:$port" \
        --database "sqlite://$WORK/$datasets-$label.db" >"$WORK/driftd.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    python3 - "$port" "$datasets" "$BATCHES" "$PID" "$label" "$WORK" <<'PY' || { tail -n 20 "$WORK/driftd.log" >&2; return 1; }
import http.client, json, subprocess, sys, time

port, datasets, batches, pid, label, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
paths = []
for b in range(batches):
    body = "\n".join(
        json.dumps({f"feature_{f:04d}": f"b{b}-r{r:03d}-f{f:04d}-7c9e6679" for f in range(1000)})
        for r in range(100)
    )
    paths.append(f"{work}/batch-{b}.ndjson")
    with open(paths[-1], "w") as out:
        out.write(body)
accepted = refused = 0
start = time.monotonic()


def post(d, path):
    """One batch, retried while the queue is full (429: profiling lags intake). curl sends
    `Expect: 100-continue`, so a refusal before the body is read arrives whole."""
    while True:
        status = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
             "-H", "Content-Type: application/x-ndjson", "--data-binary", f"@{path}",
             f"http://127.0.0.1:{port}/v1/datasets/ds{d:03d}/records?stage=online"],
            capture_output=True, text=True, check=True).stdout
        if status != "429":
            return int(status)
        time.sleep(1)


for path in paths:
    for d in range(datasets):
        status = post(d, path)
        if status == 202:
            accepted += 1
        elif status == 503:
            refused += 1
        else:
            sys.exit(f"unexpected status {status}")
elapsed = time.monotonic() - start
time.sleep(1.0)  # the queue drains into the windows
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
conn.request("GET", "/metrics")
metrics = conn.getresponse().read().decode()
held = next(float(l.split()[-1]) for l in metrics.splitlines()
            if l.startswith("driftd_memory_open_windows_bytes "))
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
rss = int(status["VmRSS"].split()[0]) / 1024
hwm = int(status["VmHWM"].split()[0]) / 1024
print(f"{datasets:>8} {label:>9} {accepted:>9} {refused:>8} {held / 2**20:>10.1f} MiB"
      f" {rss:>9.0f} MiB {hwm:>9.0f} MiB {elapsed:>7.1f} s")
PY
    kill -TERM "$PID"
    wait "$PID" || true
    PID=""
}

echo "$BATCHES batches of 100 records x 1,000 high-cardinality string features per dataset"
printf '%8s %9s %9s %8s %14s %13s %13s %9s\n' datasets budget accepted refused estimate RSS "peak RSS" load
for n in $COUNTS; do
    run "$n" 268435456 256MiB
    run "$n" "$MAX_MEMORY_OFF" off
done
