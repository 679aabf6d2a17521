#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, property and integration tests, and a quick
# run of every benchmark. Idempotent; installs nothing it does not need.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build artefacts are kept outside the clone so repeated runs (and CI) reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== prometheus"
# The Prometheus scrape test (tests/it/prometheus.rs) runs a real Prometheus server.
if ! command -v prometheus >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  # Install the binary only: a policy-rc.d that answers 101 keeps the package from starting
  # its service (there may be no init system, and the test starts its own server).
  policy=/usr/sbin/policy-rc.d
  added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    added_policy=1
  fi
  status=0
  {
    $sudo apt-get update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends prometheus
  } || status=$?
  if [ -n "$added_policy" ]; then $sudo rm -f "$policy"; fi
  if [ "$status" -ne 0 ] && ! command -v prometheus >/dev/null 2>&1; then
    echo "installing prometheus failed" >&2
    exit 1
  elif [ "$status" -ne 0 ]; then
    echo "apt-get exited with $status, but prometheus is installed: going on" >&2
  fi
fi
DRIFTD_PROMETHEUS="$(command -v prometheus)"
export DRIFTD_PROMETHEUS
"$DRIFTD_PROMETHEUS" --version 2>&1 | sed -n 1p
# The package ships promtool too (tests/it/alerting_rules.rs runs it as well).
DRIFTD_PROMTOOL="$(command -v promtool)"
export DRIFTD_PROMTOOL
echo "== promtool: Prometheus alerting rules"
(cd rules/prometheus && "$DRIFTD_PROMTOOL" check rules driftd.rules.yml &&
  "$DRIFTD_PROMTOOL" test rules driftd.rules.test.yml)
echo "== chromium"
# The report tests (tests/it/report_page.rs) open driftd's HTML report in Debian's headless
# Chromium, driven over the DevTools protocol by a standard-library Python script.
if [ -z "${DRIFTD_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium
fi
DRIFTD_CHROMIUM="${DRIFTD_CHROMIUM:-/usr/bin/chromium}"
export DRIFTD_CHROMIUM
"$DRIFTD_CHROMIUM" --version 2>/dev/null
if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 is needed to drive Chromium in the report tests" >&2
  exit 1
fi
echo "== Grafana dashboards against @grafana/schema"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm (Node.js 20 or later) is needed to check the dashboards" >&2
  exit 1
fi
(
  cd dashboards/schema-check
  # npm ci starts from scratch every time: skip it while node_modules matches the lock file.
  stamp=node_modules/.driftd-package-lock.sha256
  if ! sha256sum --check --status "$stamp" 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    sha256sum package-lock.json >"$stamp"
  fi
  npm run --silent check
)
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --all-targets --locked 2>&1 | tee "$log"
# One closing line for the whole run: cargo prints a result per test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed; exit (failed > 0 || passed == 0) }' "$log"
echo "== helm chart"
# Rendered by Helm's Go library (PyPI helm-python-sdk, in a venv under ~/.cache/driftd), linted,
# validated against the Kubernetes schemas; the rendered config and rule files are read by the
# driftd cargo test just built. Prints its own closing count line.
DRIFTD_BIN="$CARGO_TARGET_DIR/debug/driftd" bash helm/driftd/tests/run.sh
echo "== airflow"
# The Airflow integration under a real Airflow, with the driftd that cargo test just built.
DRIFTD_BIN="$CARGO_TARGET_DIR/debug/driftd" bash clients/airflow/test.sh
echo "== python client"
# The model-server client against a local stand-in and a real `driftd serve`, the same binary.
DRIFTD_BIN="$CARGO_TARGET_DIR/debug/driftd" bash clients/python/test.sh
