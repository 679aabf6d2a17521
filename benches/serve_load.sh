#!/usr/bin/env bash
# Load test of `driftd serve` on loopback: throughput, latency and memory of JSON ingest.
#
#   bash benches/serve_load.sh
#
# Builds driftd and examples/load_serve.rs in release, then runs three scenarios, each against
# a fresh `driftd serve` on a free 127.0.0.1 port with its own temporary SQLite database:
#
#   throughput  1,000-record batches, 15 features, closed loop, concurrency 4   -> records/s
#   latency     100-record batches, 15 features, open loop at 200 batches/s
#               (20,000 records/s), first 2 s not counted                       -> p99 latency
#   memory      1,000-record batches, 100 features, closed loop, concurrency 4  -> peak RSS
#
# intake/s counts records answered 202 during the load; e2e/s counts the same records up to the
# moment driftd's ingest queue is empty again (load_serve polls driftd_ingest_queue_depth on
# /metrics after the load), so it is the rate driftd really profiles at when its queue fills;
# queue is the depth (in batches) at the end of the load.
# Every scenario runs DURATION seconds (default 15). Peak RSS is driftd's VmHWM from
# /proc/PID/status, read after the load and before shutdown. Each driftd is then stopped with
# SIGTERM and must exit 0 within 30 s. A summary table compares the figures with the targets
# (records/s >= 200,000; p99 < 5 ms; RSS < 64 MiB); the script exits 1 if a run failed or
# driftd did not stop cleanly (a missed target alone is reported, not a failure).
#
# Environment: DURATION (s, at most 60), RATE (batches/s of the latency scenario),
# CONCURRENCY, SCENARIOS (default "throughput latency memory"), DRIFTD_BIN (measure another
# driftd build), KEEP=1 (keep the temporary directory with the databases and driftd logs),
# DRIFTD_* settings are passed to driftd.
#
# BUFFER=jetstream puts the durable ingest buffer in front: the script starts a NATS server of
# its own (nats-server from PATH or /usr/sbin, JetStream stored in the temporary directory, on
# a free port) and every driftd publishes to a stream of its own there, so a 202 waits for
# JetStream's acknowledgement. benches/buffer_load.sh runs both and compares.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
DURATION="${DURATION:-15}"
RATE="${RATE:-200}"
CONCURRENCY="${CONCURRENCY:-4}"
SCENARIOS="${SCENARIOS:-throughput latency memory}"
BUFFER="${BUFFER:-}"

echo "== cargo build --release --bin driftd --example load_serve"
cargo build --release --bin driftd --example load_serve
DRIFTD="${DRIFTD_BIN:-$CARGO_TARGET_DIR/release/driftd}"
LOAD="$CARGO_TARGET_DIR/release/examples/load_serve"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/driftd-serve-load.XXXXXX")"
PID=""
NATS_PID=""
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
    fi
    if [[ -n "$NATS_PID" ]]; then
        kill -TERM "$NATS_PID" 2>/dev/null || true
        wait "$NATS_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP:-0}" == 1 ]]; then
        echo "== kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
FAILED=0

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

NATS_URL=""
if [[ "$BUFFER" == jetstream ]]; then
    NATS_SERVER="$(command -v nats-server || echo /usr/sbin/nats-server)"
    NATS_PORT="$(free_port)"
    "$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
    NATS_PID=$!
    NATS_URL="nats://127.0.0.1:$NATS_PORT"
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break
        sleep 0.1
    done
    echo "== ingest buffer: JetStream of $("$NATS_SERVER" --version) at $NATS_URL"
elif [[ -n "$BUFFER" ]]; then
    echo "BUFFER must be jetstream or unset" >&2
    exit 2
fi

# start_driftd NAME: a fresh driftd on a free loopback port (publishing to a stream of its own
# with BUFFER=jetstream); sets PID and PORT.
start_driftd() {
    local name="$1"
    mkdir -p "$WORK/$name"
    PORT="$(free_port)"
    local buffer=()
    if [[ -n "$NATS_URL" ]]; then
        buffer=(DRIFTD_NATS_URL="$NATS_URL" DRIFTD_NATS_STREAM="bench_$name")
    fi
    env "${buffer[@]}" DRIFTD_LOG="${DRIFTD_LOG:-warn}" "$DRIFTD" serve --listen "127.0.0.1:$PORT" \
        --database "sqlite://$WORK/$name/bench.db" >"$WORK/$name/driftd.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "driftd did not become ready on port $PORT:" >&2
    tail -n 20 "$WORK/$name/driftd.log" >&2
    return 1
}

# stop_driftd NAME: SIGTERM, wait at most 30 s, check the exit status; sets STOP.
stop_driftd() {
    local name="$1" status=0
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID"
        wait "$PID" 2>/dev/null || true
        STOP="killed (no exit 30 s after SIGTERM)"
        FAILED=1
    else
        wait "$PID" || status=$?
        if [[ "$status" == 0 ]]; then
            STOP="exit 0"
        else
            STOP="exit $status"
            FAILED=1
            echo "driftd ($name) exited $status:" >&2
            tail -n 20 "$WORK/$name/driftd.log" >&2
        fi
    fi
    PID=""
}

field() { grep -o " $1=[^ ]*" <<<"$2" | cut -d= -f2; }

# scenario NAME LOAD_ARGS...: one driftd, one load run; sets RESULT, RSS_MIB, STOP.
scenario() {
    local name="$1"
    shift
    echo
    echo "== $name: load_serve $*"
    RESULT="" RSS_MIB="n/a" STOP="n/a"
    if ! start_driftd "$name"; then
        FAILED=1
        return
    fi
    if "$LOAD" --url "http://127.0.0.1:$PORT" --dataset "bench_$name" "$@" \
        | tee "$WORK/$name/load.out"; then
        RESULT="$(grep '^RESULT ' "$WORK/$name/load.out" || true)"
    else
        echo "load_serve failed ($name)" >&2
        FAILED=1
    fi
    local hwm rss
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "driftd ($name) died during the load:" >&2
        tail -n 20 "$WORK/$name/driftd.log" >&2
        wait "$PID" || true
        PID="" STOP="died" FAILED=1
        return
    fi
    hwm="$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status" || true)"
    rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status" || true)"
    RSS_MIB="$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')"
    echo "driftd peak RSS (VmHWM) $RSS_MIB MiB, RSS now $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
    stop_driftd "$name"
    echo "driftd stopped: $STOP"
}

verdict() { # verdict VALUE OP TARGET
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        if (v == "" || v == "nan") { print "n/a"; exit }
        ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 < t + 0)
        print ok ? "met" : "MISSED"
    }'
}

echo "== $(nproc) cores; driftd $DRIFTD; ${DURATION} s per scenario; buffer: ${BUFFER:-none}"

wanted() { [[ " $SCENARIOS " == *" $1 "* ]]; }
T_RESULT="" T_RSS="n/a" T_STOP="not run"
L_RESULT="" L_RSS="n/a" L_STOP="not run"
M_RESULT="" M_RSS="n/a" M_STOP="not run"
if wanted throughput; then
    scenario throughput --batch 1000 --features 15 --concurrency "$CONCURRENCY" \
        --duration "$DURATION" --warmup 1
    T_RESULT="$RESULT" T_RSS="$RSS_MIB" T_STOP="$STOP"
fi
if wanted latency; then
    scenario latency --batch 100 --features 15 --rate "$RATE" --duration "$DURATION" --warmup 2
    L_RESULT="$RESULT" L_RSS="$RSS_MIB" L_STOP="$STOP"
fi
if wanted memory; then
    scenario memory --batch 1000 --features 100 --concurrency "$CONCURRENCY" \
        --duration "$DURATION" --warmup 1
    M_RESULT="$RESULT" M_RSS="$RSS_MIB" M_STOP="$STOP"
fi

T_RPS="$(field e2e_records_per_s "$T_RESULT")"
T_INTAKE="$(field records_per_s "$T_RESULT")"
L_P99="$(field p99_ms "$L_RESULT")"
echo
echo "== summary (${DURATION} s per scenario, fresh driftd each, $(nproc) cores, buffer: ${BUFFER:-none})"
printf '%-11s %-32s %9s %9s %6s %8s %8s %8s %6s %8s %-7s\n' \
    scenario load intake/s e2e/s queue p50_ms p99_ms max_ms 429s RSS_MiB stop
row() { # row NAME LOAD RESULT RSS STOP
    printf '%-11s %-32s %9s %9s %6s %8s %8s %8s %6s %8s %-7s\n' "$1" "$2" \
        "$(field records_per_s "$3")" "$(field e2e_records_per_s "$3")" \
        "$(field queue_depth_end "$3")" "$(field p50_ms "$3")" "$(field p99_ms "$3")" \
        "$(field max_ms "$3")" "$(field busy "$3")" "$4" "$5"
}
row throughput "1000 rec x 15 feat, closed c=$CONCURRENCY" "$T_RESULT" "$T_RSS" "$T_STOP"
row latency "100 rec x 15 feat, open ${RATE}/s" "$L_RESULT" "$L_RSS" "$L_STOP"
row memory "1000 rec x 100 feat, closed c=$CONCURRENCY" "$M_RESULT" "$M_RSS" "$M_STOP"
echo
printf '%-40s %12s %10s  %s\n' target measured goal verdict
printf '%-40s %12s %10s  %s\n' "records/s e2e, 1,000-record batches" "${T_RPS:-n/a}" ">= 200000" \
    "$(verdict "$T_RPS" '>=' 200000)"
printf '%-40s %12s %10s  %s\n' "(records/s accepted by HTTP, same run)" "${T_INTAKE:-n/a}" ">= 200000" \
    "$(verdict "$T_INTAKE" '>=' 200000)"
printf '%-40s %12s %10s  %s\n' "p99 ms, 100-record batches at ${RATE}/s" "${L_P99:-n/a}" "< 5" \
    "$(verdict "$L_P99" '<' 5)"
printf '%-40s %12s %10s  %s\n' "peak RSS MiB, 100 features" "$M_RSS" "< 64" \
    "$(verdict "$M_RSS" '<' 64)"
exit "$FAILED"
