#!/usr/bin/env bash
# The Airflow integration's tests, under a real Airflow: unit tests of the hook (against a local
# HTTP server answering 400/429/500) and the operator, then the example DAG run with `airflow dags
# test` for three logical dates against a real `driftd serve`, checked through driftd's HTTP API.
#
#   DRIFTD_BIN            driftd binary (default: `cargo build --bin driftd`, in $CARGO_TARGET_DIR)
#   DRIFTD_AIRFLOW_VENV   the virtualenv (default ~/.cache/driftd/airflow-venv); created once and
#                         reused while Airflow's version, the pins and the Python are unchanged
#   PYTHON                interpreter for a new virtualenv (default python3)
#
# Prints `airflow: N passed, M failed` last; exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# Airflow's official constraints files are served from GitHub, which package mirrors do not carry:
# constraints.txt pins the whole resolved set instead (pip freeze of a clean install).
AIRFLOW_VERSION=3.3.2
venv="${DRIFTD_AIRFLOW_VENV:-$HOME/.cache/driftd/airflow-venv}"
python="${PYTHON:-python3}"

stamp="airflow=$AIRFLOW_VERSION python=$("$python" -c 'import sys; print(sys.version.split()[0])')"
stamp="$stamp pins=$(sha256sum "$here/constraints.txt" "$here/pyproject.toml" | sha256sum | cut -c1-16)"

echo "== airflow: virtualenv $venv"
if [ "$(cat "$venv/.driftd-airflow-stamp" 2>/dev/null)" != "$stamp" ]; then
  started=$SECONDS
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --constraint "$here/constraints.txt" \
    "apache-airflow==$AIRFLOW_VERSION" pytest
  "$venv/bin/pip" install --quiet --no-deps --editable "$here"
  echo "$stamp" >"$venv/.driftd-airflow-stamp"
  echo "installed apache-airflow $AIRFLOW_VERSION in $((SECONDS - started))s"
else
  # Shared by every clone: point the editable install at this one when another used it last.
  installed="$("$venv/bin/python" -c 'import driftd_airflow, os; print(os.path.dirname(driftd_airflow.__file__))' 2>/dev/null || true)"
  if [ "$installed" != "$here/src/driftd_airflow" ]; then
    "$venv/bin/pip" install --quiet --no-deps --editable "$here"
  fi
  echo "reusing it ($stamp)"
fi

echo "== airflow: driftd binary"
if [ -z "${DRIFTD_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftd/target}"
  (cd "$repo" && cargo build --quiet --locked --bin driftd)
  DRIFTD_BIN="$CARGO_TARGET_DIR/debug/driftd"
fi
DRIFTD_BIN="$(cd "$(dirname "$DRIFTD_BIN")" && pwd)/$(basename "$DRIFTD_BIN")"
export DRIFTD_BIN
echo "$DRIFTD_BIN"
if ! "$DRIFTD_BIN" push --help >/dev/null 2>&1; then
  echo "$DRIFTD_BIN has no \`push\` command" >&2
  echo "airflow: 0 passed, 1 failed"
  exit 1
fi

echo "== airflow: pytest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
status=0
# A fresh AIRFLOW_HOME (and SQLite database) for the in-process tests; the end-to-end tests make
# their own. -rs names skipped tests, so a missing prerequisite is never silent.
(cd "$here" && AIRFLOW_HOME="$work/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False \
  "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider --basetemp "$work/pytest" \
  --junitxml "$work/junit.xml" tests) || status=$?
echo "pytest took $((SECONDS - started))s"

# One closing line from pytest's own report: tests, failures and errors.
counts="$("$venv/bin/python" - "$work/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print(0, 1)
    raise SystemExit
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skipped, bad, skipped)
EOF
)"
read -r passed failed skipped <<<"$counts"
skipped="${skipped:-0}"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$skipped" -ne 0 ]; then
  echo "airflow: $passed passed, $failed failed, $skipped skipped"
else
  echo "airflow: $passed passed, $failed failed"
fi
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$passed" -gt 0 ]
