#!/usr/bin/env bash
# Ingest with the durable ingest buffer (NATS JetStream) against without it: the throughput and
# latency scenarios of benches/serve_load.sh, once straight into driftd's queue and once through
# a JetStream of the script's own (a 202 then waits for JetStream's publish acknowledgement).
#
#   bash benches/buffer_load.sh
#
# Environment: as serve_load.sh (DURATION, RATE, CONCURRENCY, DRIFTD_BIN, KEEP); SCENARIOS
# defaults to "throughput latency". Exits 1 if either run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export SCENARIOS="${SCENARIOS:-throughput latency}"
status=0
echo "######## without a buffer"
BUFFER= bash benches/serve_load.sh | tee /dev/stderr | sed -n '/^== summary/,/^$/p' >"${TMPDIR:-/tmp}/driftd-buffer-load.direct.$$" || status=1
echo "######## with JetStream"
BUFFER=jetstream bash benches/serve_load.sh | tee /dev/stderr | sed -n '/^== summary/,/^$/p' >"${TMPDIR:-/tmp}/driftd-buffer-load.jetstream.$$" || status=1
echo
echo "######## side by side"
cat "${TMPDIR:-/tmp}/driftd-buffer-load.direct.$$" "${TMPDIR:-/tmp}/driftd-buffer-load.jetstream.$$"
rm -f "${TMPDIR:-/tmp}/driftd-buffer-load.direct.$$" "${TMPDIR:-/tmp}/driftd-buffer-load.jetstream.$$"
exit "$status"
