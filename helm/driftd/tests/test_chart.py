"""Tests of the driftd Helm chart, rendered by Helm's own engine (helm-python-sdk).

Every case is rendered, linted and validated against the Kubernetes OpenAPI schemas
(kubernetes-validate --strict, which refuses unknown fields) for the oldest and the newest
Kubernetes the chart supports. The prometheus-operator objects (ServiceMonitor, PrometheusRule)
have no schema there: the PrometheusRule's rules go through promtool, and the ServiceMonitor is
checked against the Service it must select. The examples' renderings are compared with golden
files (DRIFTD_UPDATE_GOLDEN=1 rewrites them).
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import functools

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

# kubernetes-validate reads its (large) schema files on every call; they never change.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)

CHART = Path(__file__).resolve().parent.parent
REPO = CHART.parent.parent
GOLDEN = CHART / "tests" / "golden"
KUBE_VERSIONS = ["1.29.0", "1.37.0"]  # Chart.yaml's kubeVersion floor, and the newest schemas
RELEASE, NAMESPACE = "driftd", "ml"
SECRET_ENV = {"DRIFTD_API_TOKEN", "DRIFTD_DATABASE_URL", "DRIFTD_SLACK_WEBHOOK_URL"}
MODEL_SERVER = {"name": "ranker", "image": "registry.example.com/ranker:1", "ports": [{"name": "http", "containerPort": 8080}]}

# Inline secrets with recognisable values: none may appear anywhere but in a Secret.
TOKEN = "tok-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c1e"
DB_URL = "postgres://driftd:pw-7d1e9b3c@postgres.db:5432/driftd"
SLACK = "https://hooks.slack.com/services/T000/B000/slack-secret-42"

CASES = {
    "default": {},
    "standalone-inline-secrets": {
        "replicaCount": 2,
        "auth": {"apiToken": TOKEN},
        "database": {"url": DB_URL},
        "slack": {"webhookUrl": SLACK},
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboards": {"enabled": True},
        "podDisruptionBudget": {"enabled": True},
        "extraEnv": [{"name": "OTEL_SERVICE_NAME", "value": "driftd"}],
    },
    "standalone-unauthenticated": {"auth": {"allowUnauthenticated": True}, "config": {"window": "30s"}},
    "sidecar": {"mode": "sidecar", "sidecar": {"modelServer": MODEL_SERVER, "servicePorts": [{"name": "http", "port": 80, "targetPort": "http"}]}},
    "sidecar-native": {"mode": "sidecar", "sidecar": {"modelServer": MODEL_SERVER, "native": True}, "auth": {"apiToken": TOKEN}},
    "sidecar-library": {"mode": "sidecar"},
    "sidecar-tls-metrics": {"mode": "sidecar", "sidecar": {"modelServer": MODEL_SERVER}, "tls": {"enabled": True, "existingSecret": "driftd-tls", "listeners": "metrics"},
                            "serviceMonitor": {"enabled": True, "tlsConfig": {"ca": {"secret": {"name": "driftd-tls", "key": "ca.crt"}}, "serverName": "driftd.ml.svc"}}},
    "standalone-tls": {"tls": {"enabled": True, "existingSecret": "driftd-tls"}, "serviceMonitor": {"enabled": True}},
}
EXAMPLES = sorted(p.stem for p in (CHART / "examples").glob("*.yaml"))


def example_values(name: str) -> dict:
    return helm.values_from_yaml((CHART / "examples" / f"{name}.yaml").read_text())


ALL_CASES = {**CASES, **{f"example-{n}": example_values(n) for n in EXAMPLES}}


@pytest.fixture(scope="session")
def chart():
    helm.disable_logging()  # the loader logs every symlink of files/
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart, values: dict) -> dict[str, str]:
    return chart.render(values=copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE)


def objects(manifests: dict[str, str]) -> list[dict]:
    found = []
    for name, text in sorted(manifests.items()):
        if name.endswith("NOTES.txt"):
            continue
        found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def pod_spec(objs: list[dict]) -> dict:
    (deployment,) = by_kind(objs, "Deployment")
    return deployment["spec"]["template"]["spec"]


def driftd_container(spec: dict) -> dict:
    containers = spec["containers"] + spec.get("initContainers", [])
    (found,) = [c for c in containers if c["name"] == "driftd"]
    return found


def env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def render_error(chart, values: dict) -> str:
    with pytest.raises(helm.HelmError) as caught:
        render(chart, values)
    return str(caught.value)


# --- every case: schemas, lint, the properties that must always hold -------------------------


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_objects_validate_against_kubernetes_schemas(chart, case):
    objs = objects(render(chart, ALL_CASES[case]))
    assert objs, "nothing rendered"
    checked = 0
    for obj in objs:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # no schema in kubernetes-validate: see the ServiceMonitor and rule tests
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} against {version}: {path}: {error.message}")
            checked += 1
        assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]
    assert checked >= len(KUBE_VERSIONS)


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_lint_is_clean(case):
    report = helm.lint(CHART, copy.deepcopy(ALL_CASES[case]), strict=True, namespace=NAMESPACE, kube_version="v1.29.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize("case", sorted(c for c in ALL_CASES if c != "sidecar-library"))
def test_driftd_container_is_probed_limited_and_locked_down(chart, case):
    values = ALL_CASES[case]
    objs = objects(render(chart, values))
    spec = pod_spec(objs)
    container = driftd_container(spec)
    metrics_port = values.get("ports", {}).get("metrics", 9471)

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == metrics_port
    assert env(container)["DRIFTD_METRICS_LISTEN"]["value"] == f"0.0.0.0:{metrics_port}"
    # Each pod writes its own partial of every open window, continued after a container restart.
    assert env(container)["DRIFTD_WRITER_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    tls = values.get("tls", {})
    https = tls.get("enabled") and tls.get("listeners", "all") in ("all", "metrics")
    scheme = {"scheme": "HTTPS"} if https else {}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics", **scheme}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics", **scheme}
    assert container["startupProbe"]["httpGet"]["port"] == "metrics"

    assert re.fullmatch(r"\d+(Mi|Gi)", container["resources"]["limits"]["memory"])

    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert spec["automountServiceAccountToken"] is False

    # The only writable places are volumes: /tmp, and /var/lib/driftd when SQLite is used.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert mounts["/etc/driftd/driftd.yaml"]["readOnly"] is True
    assert container["args"] == ["serve", "--config", "/etc/driftd/driftd.yaml"]
    database = env(container)["DRIFTD_DATABASE_URL"]
    if "value" in database:
        assert database["value"] == "sqlite:///var/lib/driftd/driftd.db"
        data = volumes[mounts["/var/lib/driftd"]["name"]]
        assert "emptyDir" in data or "persistentVolumeClaim" in data
    else:
        assert "/var/lib/driftd" not in mounts


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_secrets_are_referenced_never_inlined(chart, case):
    objs = objects(render(chart, ALL_CASES[case]))
    secrets = {s["metadata"]["name"]: s for s in by_kind(objs, "Secret")}
    for deployment in by_kind(objs, "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            for name, entry in env(container).items():
                if name not in SECRET_ENV:
                    continue
                if entry.get("value") == "sqlite:///var/lib/driftd/driftd.db":
                    continue  # the chart's SQLite file: a path, no secret in it
                assert "value" not in entry, f"{name} inlined in {container['name']}"
                ref = entry["valueFrom"]["secretKeyRef"]
                if ref["name"] in secrets:  # the chart's own Secret holds that key
                    assert ref["key"] in secrets[ref["name"]]["data"]
    text = yaml.safe_dump_all([o for o in objs if o["kind"] != "Secret"])
    for secret in (TOKEN, DB_URL, SLACK, "pw-7d1e9b3c"):
        assert secret not in text
    for secret in secrets.values():
        assert set(secret) >= {"data"} and "stringData" not in secret


# --- standalone --------------------------------------------------------------------------------


def test_standalone_listens_everywhere_and_generates_a_token(chart):
    manifests = render(chart, {})
    objs = objects(manifests)
    container = driftd_container(pod_spec(objs))
    variables = env(container)
    assert variables["DRIFTD_LISTEN"]["value"] == "0.0.0.0:8471"
    assert variables["DRIFTD_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "driftd", "key": "api-token"}
    (secret,) = by_kind(objs, "Secret")
    assert secret["metadata"]["annotations"]["driftd/generated"] == "api-token"
    token = base64.b64decode(secret["data"]["api-token"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{48}", token)
    # No cluster to look the old Secret up in: each offline render draws a new token.
    again = objects(render(chart, {}))
    assert by_kind(again, "Secret")[0]["data"]["api-token"] != secret["data"]["api-token"]
    (deployment,) = by_kind(objs, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (service,) = by_kind(objs, "Service")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": 8471, "metrics": 9471}
    notes = manifests["driftd/templates/NOTES.txt"]
    assert "get secret driftd -o jsonpath='{.data.api-token}'" in notes


def test_given_secrets_go_to_the_charts_secret(chart):
    objs = objects(render(chart, CASES["standalone-inline-secrets"]))
    (secret,) = by_kind(objs, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"api-token": TOKEN, "database-url": DB_URL, "slack-webhook-url": SLACK}
    assert "annotations" not in secret["metadata"]
    (deployment,) = by_kind(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert "strategy" not in deployment["spec"]  # PostgreSQL: rolling updates are fine


def test_existing_secrets_are_used_with_their_keys(chart):
    values = {
        "replicaCount": 3,
        "auth": {"existingSecret": "tokens", "existingSecretKey": "driftd"},
        "database": {"existingSecret": "pg", "existingSecretKey": "uri"},
        "slack": {"existingSecret": "slack", "existingSecretKey": "hook"},
    }
    objs = objects(render(chart, values))
    assert not by_kind(objs, "Secret")
    variables = env(driftd_container(pod_spec(objs)))
    refs = {n: variables[n]["valueFrom"]["secretKeyRef"] for n in SECRET_ENV}
    assert refs == {
        "DRIFTD_API_TOKEN": {"name": "tokens", "key": "driftd"},
        "DRIFTD_DATABASE_URL": {"name": "pg", "key": "uri"},
        "DRIFTD_SLACK_WEBHOOK_URL": {"name": "slack", "key": "hook"},
    }


@pytest.mark.parametrize("values", [{"replicaCount": 2}, {"replicaCount": 3, "database": {"url": "sqlite:///var/lib/driftd/x.db"}}])
def test_several_replicas_on_sqlite_are_refused(chart, values):
    message = render_error(chart, values)
    assert "need PostgreSQL" in message or "needs PostgreSQL" in message, message
    assert f"replicaCount is {values['replicaCount']}" in message


def test_unauthenticated_is_explicit_and_warned(chart):
    manifests = render(chart, CASES["standalone-unauthenticated"])
    objs = objects(manifests)
    assert not by_kind(objs, "Secret")
    assert "DRIFTD_API_TOKEN" not in env(driftd_container(pod_spec(objs)))
    (config,) = [c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"] == "driftd"]
    assert yaml.safe_load(config["data"]["driftd.yaml"]) == {"window": "30s", "allow_unauthenticated": True}
    assert "WARNING: auth.allowUnauthenticated is true" in manifests["driftd/templates/NOTES.txt"]


def test_persistence_claims_a_volume_for_sqlite(chart):
    objs = objects(render(chart, example_values("standalone-sqlite")))
    (claim,) = by_kind(objs, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    volumes = {v["name"]: v for v in pod_spec(objs)["volumes"]}
    assert volumes["driftd-data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


# --- sidecar -----------------------------------------------------------------------------------


def test_sidecar_ingest_stays_on_loopback(chart):
    objs = objects(render(chart, CASES["sidecar"]))
    spec = pod_spec(objs)
    assert [c["name"] for c in spec["containers"]] == ["ranker", "driftd"]
    container = driftd_container(spec)
    assert env(container)["DRIFTD_LISTEN"]["value"] == "127.0.0.1:8471"
    assert [p["name"] for p in container["ports"]] == ["metrics"]  # ingest is not a pod port
    assert "DRIFTD_API_TOKEN" not in env(container)  # loopback needs no token
    server = spec["containers"][0]
    assert env(server)["DRIFTD_URL"]["value"] == "http://127.0.0.1:8471"
    assert server["image"] == MODEL_SERVER["image"] and server["ports"] == MODEL_SERVER["ports"]
    (service,) = by_kind(objs, "Service")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": 80, "metrics": 9471}
    assert 8471 not in [p["port"] for p in service["spec"]["ports"]]
    assert not by_kind(objs, "Secret")


def test_sidecar_keeps_the_model_servers_own_driftd_url(chart):
    server = {**MODEL_SERVER, "env": [{"name": "DRIFTD_URL", "value": "http://127.0.0.1:9999"}]}
    objs = objects(render(chart, {"mode": "sidecar", "sidecar": {"modelServer": server}}))
    assert env(pod_spec(objs)["containers"][0])["DRIFTD_URL"]["value"] == "http://127.0.0.1:9999"


def test_native_sidecar_is_an_always_restarting_init_container(chart):
    objs = objects(render(chart, CASES["sidecar-native"]))
    spec = pod_spec(objs)
    assert [c["name"] for c in spec["containers"]] == ["ranker"]
    (init,) = spec["initContainers"]
    assert init["name"] == "driftd" and init["restartPolicy"] == "Always"
    assert env(init)["DRIFTD_API_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "api-token"


def test_sidecar_without_a_model_server_renders_only_driftds_config(chart):
    manifests = render(chart, CASES["sidecar-library"])
    kinds = sorted(o["kind"] for o in objects(manifests))
    assert kinds == ["ConfigMap"]
    assert 'include "driftd.sidecarContainer" .Subcharts.driftd' in manifests["driftd/templates/NOTES.txt"]


def test_named_templates_add_driftd_to_another_charts_pod():
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp) / "ranker"
        shutil.copytree(CHART / "tests" / "parent", parent)
        # What `helm dependency build` does with the file:// dependency (symlinks dereferenced).
        shutil.copytree(CHART, parent / "charts" / "driftd", ignore=shutil.ignore_patterns("tests", "examples"))
        with helm.Chart.load(parent) as loaded:
            objs = objects(loaded.render(name="ranker", namespace=NAMESPACE))
    for obj in objs:
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    (deployment,) = by_kind(objs, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["ranker", "driftd"]
    container = driftd_container(spec)
    assert env(container)["DRIFTD_LISTEN"]["value"] == "127.0.0.1:8471"
    assert env(container)["DRIFTD_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "ranker-driftd-token", "key": "api-token"}
    assert container["image"] == "ghcr.io/driftd/driftd:0.1.0"
    volumes = {v["name"]: v for v in spec["volumes"]}
    (config,) = by_kind(objs, "ConfigMap")
    assert volumes["driftd-config"]["configMap"]["name"] == config["metadata"]["name"] == "ranker-driftd"
    assert yaml.safe_load(config["data"]["driftd.yaml"]) == {"window": "60s"}


# --- TLS ----------------------------------------------------------------------------------------


def probes(container: dict) -> dict[str, dict]:
    return {k: container[k]["httpGet"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}


def test_tls_mounts_the_secret_and_switches_probes_and_scrapes_to_https(chart):
    objs = objects(render(chart, CASES["standalone-tls"]))
    spec = pod_spec(objs)
    container = driftd_container(spec)
    variables = env(container)
    assert variables["DRIFTD_TLS_CERT"]["value"] == "/etc/driftd/tls/tls.crt"
    assert variables["DRIFTD_TLS_KEY"]["value"] == "/etc/driftd/tls/tls.key"
    assert variables["DRIFTD_TLS_LISTENERS"]["value"] == "all"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "driftd-tls"]
    # A directory, not a subPath: a renewed certificate reaches the running pod.
    assert mount == {"name": "driftd-tls", "mountPath": "/etc/driftd/tls", "readOnly": True}
    (volume,) = [v for v in spec["volumes"] if v["name"] == "driftd-tls"]
    assert volume["secret"] == {"secretName": "driftd-tls"}
    assert {p["scheme"] for p in probes(container).values()} == {"HTTPS"}
    (monitor,) = by_kind(objs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["scheme"] == "https"


def test_tls_on_the_metrics_listener_keeps_sidecar_ingest_plain_on_loopback(chart):
    objs = objects(render(chart, CASES["sidecar-tls-metrics"]))
    spec = pod_spec(objs)
    container = driftd_container(spec)
    assert env(container)["DRIFTD_TLS_LISTENERS"]["value"] == "metrics"
    assert {p["scheme"] for p in probes(container).values()} == {"HTTPS"}
    assert env(spec["containers"][0])["DRIFTD_URL"]["value"] == "http://127.0.0.1:8471"
    (monitor,) = by_kind(objs, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == CASES["sidecar-tls-metrics"]["serviceMonitor"]["tlsConfig"]
    # TLS on the API only: the probes stay plain HTTP, the model server's URL becomes https.
    values = copy.deepcopy(CASES["sidecar-tls-metrics"])
    values["tls"]["listeners"] = "api"
    spec = pod_spec(objects(render(chart, values)))
    assert all("scheme" not in p for p in probes(driftd_container(spec)).values())
    assert env(spec["containers"][0])["DRIFTD_URL"]["value"] == "https://127.0.0.1:8471"


def test_without_tls_nothing_of_it_is_rendered(chart):
    container = driftd_container(pod_spec(objects(render(chart, {}))))
    assert not any(name.startswith("DRIFTD_TLS") for name in env(container))
    assert all("scheme" not in p for p in probes(container).values())


def test_driftd_serves_https_with_the_mounted_certificate(chart):
    """The pod's environment with the Secret's files in a temporary directory: the probe
    listener answers HTTPS that a client verifying the certificate accepts."""
    binary = driftd_bin()
    if not binary:
        if os.environ.get("CI") == "true":
            pytest.fail("no driftd binary: scripts/test.sh passes DRIFTD_BIN")
        pytest.skip("no driftd binary (set DRIFTD_BIN)")
    container = driftd_container(pod_spec(objects(render(chart, CASES["standalone-tls"]))))
    with tempfile.TemporaryDirectory() as tmp:
        tls = Path(tmp) / "tls"
        tls.mkdir()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", str(tls / "tls.key"), "-out", str(tls / "tls.crt")], check=True, capture_output=True)
        ports = []
        for _ in range(2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                ports.append(s.getsockname()[1])
        variables = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "DRIFTD_API_TOKEN": "chart-test-token-0123456789",
                     "DRIFTD_DATABASE_URL": f"sqlite://{tmp}/driftd.db"}
        for name, variable in env(container).items():
            if name.startswith("DRIFTD_TLS"):
                variables[name] = variable["value"].replace("/etc/driftd/tls", str(tls))
        variables["DRIFTD_LISTEN"] = f"127.0.0.1:{ports[0]}"
        variables["DRIFTD_METRICS_LISTEN"] = f"127.0.0.1:{ports[1]}"
        process = subprocess.Popen([binary, "serve"], env=variables, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            context = ssl.create_default_context(cafile=str(tls / "tls.crt"))
            path = probes(container)["readinessProbe"]["path"]
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"https://localhost:{ports[1]}{path}", context=context, timeout=2) as answer:
                        assert answer.status == 200
                        break
                except (ConnectionError, urllib.error.URLError):
                    assert process.poll() is None, process.stderr.read().decode()
                    assert time.monotonic() < deadline, "driftd did not answer HTTPS within 20 s"
                    time.sleep(0.2)
            # Plain HTTP on the TLS port is not served.
            with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
                urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}{path}", timeout=2).read()
        finally:
            process.terminate()
            process.wait(timeout=15)


# --- values refused with a reason ----------------------------------------------------------------


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"mode": "daemonset"}, "value must be one of 'standalone', 'sidecar'"),
        ({"config": {"database_url": DB_URL}}, "config.database_url is a secret"),
        ({"config": {"slack_webhook_url": SLACK}}, "config.slack_webhook_url is a secret"),
        ({"config": {"listen": "0.0.0.0:1"}}, "config.listen is set by the chart"),
        ({"config": {"auth": {"tokens": [{"name": "ci", "scopes": ["offline"], "token": "x"}]}}}, 'token "ci" is given in clear'),
        ({"database": {"url": "mysql://x"}}, "does not match pattern"),
        ({"resources": {"limits": {"memory": None}}}, "/resources/limits"),
        ({"mode": "sidecar", "persistence": {"enabled": True}}, "persistence is for standalone mode"),
        ({"sidecar": {"modelServer": MODEL_SERVER}}, "set mode: sidecar"),
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"tls": {"enabled": True}}, "tls.enabled needs tls.existingSecret"),
        ({"tls": {"enabled": True, "existingSecret": "s", "listeners": "both"}}, "value must be one of 'all', 'api', 'metrics'"),
        ({"config": {"tls_cert": "/x.crt"}}, "config.tls_cert is set by the chart"),
    ],
)
def test_bad_values_are_refused_with_a_reason(chart, values, expected):
    message = render_error(chart, values)
    assert expected in message, message
    assert DB_URL not in message and SLACK not in message


def test_config_is_passed_through_as_written(chart):
    values = {"config": {"max_body_bytes": 16777216, "trace_record_sample_rate": 0.25, "window": "2m"}}
    objs = objects(render(chart, values))
    (config,) = [c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"] == "driftd"]
    assert yaml.safe_load(config["data"]["driftd.yaml"]) == values["config"]
    text = "max_body_bytes: 16777216\nwindow: 5m\n"
    objs = objects(render(chart, {"config": text}))
    (config,) = [c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"] == "driftd"]
    assert config["data"]["driftd.yaml"] == text


# --- driftd itself reads what the chart mounts -------------------------------------------------


def driftd_bin() -> str | None:
    return os.environ.get("DRIFTD_BIN") or shutil.which("driftd")


@pytest.mark.parametrize("case", sorted(c for c in ALL_CASES if ALL_CASES[c].get("config") or ALL_CASES[c].get("rules")))
def test_driftd_accepts_the_rendered_config_and_rules(chart, case):
    binary = driftd_bin()
    if not binary:
        if os.environ.get("CI") == "true":
            pytest.fail("no driftd binary: scripts/test.sh passes DRIFTD_BIN")
        pytest.skip("no driftd binary (set DRIFTD_BIN)")
    objs = objects(render(chart, ALL_CASES[case]))
    maps = {c["metadata"]["name"]: c["data"] for c in by_kind(objs, "ConfigMap")}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "driftd.yaml"
        config.write_text(maps["driftd"]["driftd.yaml"])
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
        # The container's environment as the pod would have it, secrets stood in for: so a
        # listen address beyond loopback meets its token (or allow_unauthenticated) here too.
        stand_ins = {"DRIFTD_API_TOKEN": "chart-test-token-0123456789", "DRIFTD_DATABASE_URL": "sqlite://driftd.db",
                     "DRIFTD_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
                     "DRIFTD_WRITER_ID": "driftd-5f7c9b8d4-x2k8q"}
        deployments = by_kind(objs, "Deployment")
        if deployments:
            for name, variable in env(driftd_container(pod_spec(objs))).items():
                if "value" in variable:
                    clean[name] = variable["value"]
                elif name in stand_ins:
                    clean[name] = stand_ins[name]
        done = subprocess.run([binary, "serve", "--config", str(config), "--print-config"], env=clean, cwd=tmp, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        printed = yaml.safe_load(done.stdout)
        if clean.get("DRIFTD_METRICS_LISTEN"):
            assert printed["metrics_listen"] == clean["DRIFTD_METRICS_LISTEN"]
        if "driftd-rules" in maps:
            rules = Path(tmp) / "rules"
            rules.mkdir()
            for name, content in maps["driftd-rules"].items():
                (rules / name).write_text(content)
            done = subprocess.run([binary, "rules", "check", str(rules)], env=clean, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stdout + done.stderr


# --- monitoring: one source for the rules and the dashboards -------------------------------------


def test_files_link_to_the_repositorys_rules_and_dashboards():
    links = {p.name: p for p in (CHART / "files" / "dashboards").iterdir()}
    assert sorted(links) == sorted(p.name for p in (REPO / "dashboards").glob("*.json")), "link every dashboard in files/dashboards"
    for name, link in links.items():
        assert link.is_symlink() and link.resolve() == (REPO / "dashboards" / name).resolve()
    rules = CHART / "files" / "prometheus" / "driftd.rules.yml"
    assert rules.is_symlink() and rules.resolve() == (REPO / "rules" / "prometheus" / "driftd.rules.yml").resolve()


def test_prometheus_rule_is_the_repositorys_rule_file(chart):
    objs = objects(render(chart, CASES["standalone-inline-secrets"]))
    (rule,) = by_kind(objs, "PrometheusRule")
    source = yaml.safe_load((REPO / "rules" / "prometheus" / "driftd.rules.yml").read_text())
    assert rule["spec"] == source
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert "DriftdDown" in alerts and "DriftdFeatureDrifted" in alerts
    # Helm left the {{ $labels.… }} of the annotations alone.
    assert "{{ $labels.dataset }}" in json.dumps(rule["spec"])
    promtool = os.environ.get("DRIFTD_PROMTOOL") or shutil.which("promtool")
    if promtool:
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as file:
            yaml.safe_dump(rule["spec"], file)
            file.flush()
            done = subprocess.run([promtool, "check", "rules", file.name], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stdout + done.stderr


def test_service_monitor_scrapes_the_metrics_port_as_job_driftd(chart):
    for case in ("standalone-inline-secrets", "example-sidecar"):
        objs = objects(render(chart, ALL_CASES[case]))
        (monitor,) = by_kind(objs, "ServiceMonitor")
        (service,) = by_kind(objs, "Service")
        labels = service["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
        assert "metrics" in [p["name"] for p in service["spec"]["ports"]]
        # The rules' DriftdDown watches up{job="driftd"}.
        assert labels[monitor["spec"]["jobLabel"]] == "driftd"


def test_dashboards_become_configmaps_for_grafanas_sidecar(chart):
    objs = objects(render(chart, CASES["standalone-inline-secrets"]))
    dashboards = [c for c in by_kind(objs, "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    files = sorted((REPO / "dashboards").glob("*.json"))
    assert len(dashboards) == len(files) >= 2
    data = {k: v for c in dashboards for k, v in c["data"].items()}
    for file in files:
        assert json.loads(data[file.name]) == json.loads(file.read_text())


def test_packaged_chart_carries_the_linked_files():
    with tempfile.TemporaryDirectory() as tmp:
        archive = helm.package(CHART, destination=tmp)
        assert Path(archive).name == "driftd-0.1.0.tgz"
        with helm.Chart.load(archive) as packaged:
            names = {f["name"] for f in packaged.files}
            assert {"files/prometheus/driftd.rules.yml", "files/dashboards/driftd-overview.json"} <= names
            assert not [n for n in names if n.startswith(("tests/", "examples/"))]
            objs = objects(render(packaged, CASES["standalone-inline-secrets"]))
    assert len(by_kind(objs, "PrometheusRule")) == 1
    assert len([c for c in by_kind(objs, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]) >= 2


def test_pod_disruption_budget_and_service_select_the_pods(chart):
    objs = objects(render(chart, example_values("standalone-postgres")))
    (deployment,) = by_kind(objs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    (pdb,) = by_kind(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2 and "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (service,) = by_kind(objs, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    spec = deployment["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"][0]["key"] == "dedicated"
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert env(driftd_container(spec))["DRIFTD_RULES"]["value"] == "/etc/driftd/rules"


def test_chart_app_version_is_driftds_version():
    cargo = (REPO / "Cargo.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == version


# --- golden files ----------------------------------------------------------------------------------


def normalised(manifests: dict[str, str]) -> str:
    """The rendering as one text; a generated token (random on every offline render) masked."""
    out = []
    for name, text in sorted(manifests.items()):
        text = text.strip()
        if not text:
            continue
        if name.endswith("secret.yaml") and "driftd/generated: api-token" in text:
            text = re.sub(r"(?m)^(  api-token: ).*$", r"\1GENERATED", text)
        out.append(f"# Source: {name}\n{text}\n")
    return "---\n".join(out)


@pytest.mark.parametrize("case", ["default", "sidecar"] + [f"example-{n}" for n in EXAMPLES])
def test_rendering_matches_golden_file(chart, case):
    text = normalised(render(chart, ALL_CASES[case]))
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("DRIFTD_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"{golden} is missing: run with DRIFTD_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{case} renders differently from {golden.name} (DRIFTD_UPDATE_GOLDEN=1 rewrites it after review)"
