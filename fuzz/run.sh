#!/usr/bin/env bash
# A bounded run of every fuzz target, one after another: FUZZ_SECONDS each (default 60).
# New inputs go to a scratch corpus; those that add coverage are merged into fuzz/corpus/<target>/
# (libFuzzer's -merge=1, which keeps the committed seeds and adds only what finds new code).
# A crash stops the run with the input saved under fuzz/artifacts/<target>/.
#
#   fuzz/run.sh                      # every target, 60 s each
#   FUZZ_SECONDS=300 fuzz/run.sh csv # one target, 5 minutes
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). On a stable toolchain the nightly flags
# cargo-fuzz passes are allowed by RUSTC_BOOTSTRAP=1. FUZZ_SANITIZER=none builds without
# AddressSanitizer (faster; driftd has no unsafe code of its own).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(profile_file records csv rule_file)
fi
export RUSTC_BOOTSTRAP=1
build=(--sanitizer "$sanitizer" --codegen-units 16)
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  build+=(--target-dir "$CARGO_TARGET_DIR")
fi
cargo fuzz build "${build[@]}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  mkdir -p "$scratch/$target" "artifacts/$target"
  # -rss_limit_mb: an input that makes driftd hold 2 GB is a bug too. -max_len: inputs up to
  # 64 KiB, larger than any seed, so that limits inside a body can be reached.
  status=0
  cargo fuzz run "${build[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -print_final_stats=1 >"$scratch/$target.log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +(INITED|DONE)|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' \
    "$scratch/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$scratch/$target.log" >&2
    echo "$target: the fuzzer stopped with status $status; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  before=$(find "corpus/$target" -type f | wc -l)
  cargo fuzz run "${build[@]}" "$target" "corpus/$target" "$scratch/$target" -- -merge=1 \
    >"$scratch/$target.merge.log" 2>&1
  after=$(find "corpus/$target" -type f | wc -l)
  echo "$target: corpus $before -> $after files ($(du -sh "corpus/$target" | cut -f1))"
done
