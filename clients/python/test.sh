#!/usr/bin/env bash
# The Python client's tests: the queue and the wire format alone, the sender against a local
# HTTP stand-in for driftd (Retry-After, 400, 413, 415, 500), forked workers and interpreter exit,
# then a real `driftd serve` (delivery from many threads, a 400, a restart) and the examples.
#
#   DRIFTD_BIN            driftd binary (default: `cargo build --bin driftd`, in $CARGO_TARGET_DIR)
#   DRIFTD_PYCLIENT_VENV  the virtualenv (default ~/.cache/driftd/pyclient-venv); created once and
#                         reused while test-requirements.txt and the Python are unchanged
#   PYTHON                interpreter for a new virtualenv (default python3)
#
# Prints `python client: N passed, M failed` last; exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

venv="${DRIFTD_PYCLIENT_VENV:-$HOME/.cache/driftd/pyclient-venv}"
python="${PYTHON:-python3}"

stamp="python=$("$python" -c 'import sys; print(sys.version.split()[0])')"
stamp="$stamp pins=$(sha256sum "$here/test-requirements.txt" "$here/pyproject.toml" | sha256sum | cut -c1-16)"

echo "== python client: virtualenv $venv"
if [ "$(cat "$venv/.driftd-pyclient-stamp" 2>/dev/null)" != "$stamp" ]; then
  started=$SECONDS
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --requirement "$here/test-requirements.txt"
  "$venv/bin/pip" install --quiet --no-deps --editable "$here"
  echo "$stamp" >"$venv/.driftd-pyclient-stamp"
  echo "installed in $((SECONDS - started))s"
else
  # Shared by every clone: point the editable install at this one when another used it last.
  installed="$("$venv/bin/python" -c 'import driftd_client, os; print(os.path.dirname(driftd_client.__file__))' 2>/dev/null || true)"
  if [ "$installed" != "$here/src/driftd_client" ]; then
    "$venv/bin/pip" install --quiet --no-deps --editable "$here"
  fi
  echo "reusing it ($stamp)"
fi

echo "== python client: driftd binary"
if [ -z "${DRIFTD_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
  (cd "$repo" && cargo build --quiet --locked --bin driftd)
  DRIFTD_BIN="$CARGO_TARGET_DIR/debug/driftd"
fi
DRIFTD_BIN="$(cd "$(dirname "$DRIFTD_BIN")" && pwd)/$(basename "$DRIFTD_BIN")"
export DRIFTD_BIN
echo "$DRIFTD_BIN"

echo "== python client: pytest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
status=0
# -rs names skipped tests, so a missing prerequisite is never silent; skips fail the run.
(cd "$here" && "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider --basetemp "$work/pytest" \
  --junitxml "$work/junit.xml" tests) || status=$?
echo "pytest took $((SECONDS - started))s"

counts="$("$venv/bin/python" - "$work/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print(0, 1, 0)
    raise SystemExit
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skipped, bad, skipped)
PY
)"
read -r passed failed skipped <<<"$counts"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$skipped" -ne 0 ]; then
  echo "python client: $passed passed, $failed failed, $skipped skipped"
else
  echo "python client: $passed passed, $failed failed"
fi
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$passed" -gt 0 ]
