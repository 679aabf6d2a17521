#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, property and integration tests.
# Idempotent; installs nothing it does not need.
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
cargo test --all-targets --locked
