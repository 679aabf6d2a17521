#!/usr/bin/env bash
# The Helm chart's tests: renders every mode and example with Helm's own engine, lints the
# chart, validates every object against the Kubernetes schemas, compares the examples with
# their golden files and asserts what matters (probes, secrets, limits, loopback ingest).
#
#   bash helm/driftd/tests/run.sh [pytest args]
#   DRIFTD_UPDATE_GOLDEN=1 bash helm/driftd/tests/run.sh     # rewrite tests/golden/
#
# The tools are installed once into a venv (${DRIFTD_HELM_VENV:-~/.cache/driftd/helm-venv}) and
# reinstalled only when requirements.txt changes. DRIFTD_BIN (a driftd binary) lets the tests
# check the rendered config and rule files with driftd itself; DRIFTD_PROMTOOL (or promtool on
# PATH) checks the PrometheusRule's rules.
set -euo pipefail
cd "$(dirname "$0")"
venv="${DRIFTD_HELM_VENV:-$HOME/.cache/driftd/helm-venv}"
stamp="$venv/.driftd-requirements.sha256"
if ! [[ -x "$venv/bin/python" ]] || ! sha256sum --check --status "$stamp" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
    sha256sum "$PWD/requirements.txt" >"$stamp"
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
