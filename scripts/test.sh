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
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --all-targets --locked 2>&1 | tee "$log"
# One closing line for the whole run: cargo prints a result per test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed; exit (failed > 0 || passed == 0) }' "$log"
