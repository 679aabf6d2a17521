"""The example DAG under a real Airflow, pushing to a real driftd (`driftd serve`, `driftd push`).

Runs when DRIFTD_BIN names a driftd binary (test.sh sets it). The DAG runs with `airflow dags
test` for three logical dates, each a DAG run of its own; the assertions go through driftd's HTTP
API and /metrics, and through Airflow's metadata database for what the tasks returned.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from airflow.exceptions import AirflowException

from driftd_airflow import DriftdError, DriftdHook, DriftdPushOperator

DRIFTD_BIN = os.environ.get("DRIFTD_BIN")
pytestmark = pytest.mark.skipif(not DRIFTD_BIN, reason="DRIFTD_BIN is not set (test.sh sets it)")

DAG_ID = "driftd_training_data"
PUSH_TASK = "push_training_data"
DATASET = "search_ranking_inputs"
DATES = ["2026-11-03", "2026-11-10", "2026-11-17"]
EXAMPLE_DAGS = Path(__file__).resolve().parent.parent / "example_dags"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def expected_counters(date: str) -> dict[str, int]:
    """What the example DAG reads and drops on a day: 500 + 10 × day-of-month rows, every 25th
    (from the 8th on) without a label."""
    rows_read = 500 + 10 * int(date[-2:])
    return {"rows_read": rows_read, "rows_dropped": len(range(7, rows_read, 25))}


@dataclass
class Driftd:
    url: str
    process: subprocess.Popen
    log: Path

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            body = response.read().decode()
        return json.loads(body) if path.startswith("/v1/") else body

    def metric(self, family: str, **labels: str) -> float | None:
        """The value of the sample of `family` whose labels include `labels`."""
        found = None
        for line in self.get("/metrics").splitlines():
            match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
            if not match or match.group(1) != family:
                continue
            have = dict(
                re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2) or "")
            )
            if all(have.get(k) == v for k, v in labels.items()):
                assert found is None, f"more than one {family} sample matches {labels}"
                found = float(match.group(3))
        return found


@dataclass
class Airflow:
    env: dict[str, str]
    home: Path
    data_dir: Path
    logs: Path
    runs: dict[str, str] = field(default_factory=dict)  # logical date → run id

    def run(self, *args: str, name: str) -> None:
        log = self.logs / f"{name}.log"
        started = time.monotonic()
        with open(log, "w") as out:
            status = subprocess.run(
                [AIRFLOW, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=600
            ).returncode
        print(f"airflow {' '.join(args)}: {time.monotonic() - started:.1f}s", file=sys.stderr)
        if status != 0:
            tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
            pytest.fail(f"airflow {' '.join(args)} exited with {status}; log {log}:\n{tail}")

    def query(self, sql: str, *params):
        with sqlite3.connect(self.home / "airflow.db") as db:
            return db.execute(sql, params).fetchall()

    def run_id(self, date: str) -> str:
        [(run_id,)] = self.query(
            "SELECT run_id FROM dag_run WHERE dag_id = ? AND logical_date LIKE ?",
            DAG_ID,
            f"{date}%",
        )
        return run_id

    def xcom(self, run_id: str, task_id: str, key: str = "return_value"):
        [(value,)] = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
            DAG_ID, run_id, task_id, key,
        )  # fmt: skip
        return json.loads(value)


def listen_address(log: str) -> str | None:
    """The address from driftd's "driftd serving" log line (JSON lines, or text on a terminal)."""
    for line in log.splitlines():
        if "driftd serving" not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            match = re.search(r"listen=(\S+)", line)
            if match:
                return match.group(1)
            continue
        for fields in (event, event.get("fields", {})):
            if isinstance(fields, dict) and fields.get("listen"):
                return fields["listen"]
    return None


@pytest.fixture(scope="module")
def driftd(tmp_path_factory):
    home = tmp_path_factory.mktemp("driftd")
    log = home / "driftd.log"
    with open(log, "w") as err:
        process = subprocess.Popen(
            [
                DRIFTD_BIN,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                f"sqlite://{home / 'driftd.db'}",
            ],
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "DRIFTD_LOG": "info"},
        )
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"driftd serve did not start (status {process.poll()}):\n{log.read_text()}"
                )
            address = listen_address(log.read_text())
            if address:
                url = f"http://{address}"
            time.sleep(0.05)
        yield Driftd(url=url, process=process, log=log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, driftd):
    """A fresh Airflow home (SQLite), migrated, with the example DAG run for each of DATES."""
    home = tmp_path_factory.mktemp("airflow_home")
    logs = tmp_path_factory.mktemp("airflow_logs")
    data_dir = tmp_path_factory.mktemp("training_data")
    host, port = driftd.url.removeprefix("http://").rsplit(":", 1)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_DRIFTD_DEFAULT": json.dumps(
            {"conn_type": "driftd", "host": host, "port": int(port), "schema": "http"}
        ),
        "DRIFTD_EXAMPLE_DATA_DIR": str(data_dir),
        # The operator's default driftd_bin is `driftd`, found on PATH as on a worker.
        "PATH": f"{Path(DRIFTD_BIN).resolve().parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    airflow = Airflow(env=env, home=home, data_dir=data_dir, logs=logs)
    airflow.run("db", "migrate", name="db-migrate")
    for date in DATES:
        airflow.run("dags", "test", DAG_ID, date, name=f"dags-test-{date}")
        airflow.runs[date] = airflow.run_id(date)
    return airflow


def counter_figures(driftd: Driftd, name: str) -> dict:
    """One counter's entry of GET /v1/datasets/{dataset}/counters."""
    answer = driftd.get(f"/v1/datasets/{DATASET}/counters")
    [entry] = [c for c in answer["counters"] if c["name"] == name]
    return entry


def driftd_runs(driftd: Driftd) -> dict[str, dict]:
    """GET /v1/datasets/{dataset}/runs by run id."""
    return {run["run_id"]: run for run in driftd.get(f"/v1/datasets/{DATASET}/runs")["runs"]}


def epoch_ms(date: str) -> int:
    return int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def test_each_dag_run_is_a_driftd_run(airflow):
    assert len(set(airflow.runs.values())) == len(DATES), airflow.runs


def test_tasks_returned_the_expected_counters(airflow):
    for date, run_id in airflow.runs.items():
        assert airflow.xcom(run_id, "write_training_data", "counters") == expected_counters(date)


def test_offline_counters_are_in_driftd(airflow, driftd):
    latest = expected_counters(DATES[-1])
    total = {name: sum(expected_counters(d)[name] for d in DATES) for name in latest}
    for name in ("rows_read", "rows_dropped"):
        figures = counter_figures(driftd, name)
        # The latest run is the one with the latest logical date.
        assert figures["offline"]["value"] == latest[name], figures
        assert figures["offline"]["run_id"] == airflow.runs[DATES[-1]], figures
        assert figures["offline"]["run_time_ms"] == epoch_ms(DATES[-1]), figures
        assert figures["online"] is None, figures
        assert driftd.metric("driftd_run_counter", dataset=DATASET, name=name) == latest[name]
        assert (
            driftd.metric("driftd_counter_total", dataset=DATASET, name=name, stage="offline")
            == total[name]
        )


def test_each_run_has_its_counters_labels_and_time(airflow, driftd):
    runs = driftd_runs(driftd)
    assert set(runs) == set(airflow.runs.values())
    for date, run_id in airflow.runs.items():
        run = runs[run_id]
        assert run["counters"] == expected_counters(date), run
        assert run["run_time_ms"] == epoch_ms(date), run
        assert run["labels"] == {
            "dag_id": DAG_ID,
            "task_id": PUSH_TASK,
            "pipeline": "search_ranking",
        }, run


def test_uploaded_profiles_have_the_written_rows(airflow, driftd):
    runs = driftd_runs(driftd)
    total = 0
    for date, run_id in airflow.runs.items():
        counters = expected_counters(date)
        written = counters["rows_read"] - counters["rows_dropped"]
        path = airflow.xcom(run_id, "write_training_data", "path")
        with open(path, newline="") as f:
            assert sum(1 for _ in csv.DictReader(f)) == written
        assert runs[run_id]["metrics"]["profile.rows"] == written, runs[run_id]
        # driftd push's summary, the push task's return value.
        summary = airflow.xcom(run_id, PUSH_TASK)
        assert summary["rows"] == written, summary
        assert summary["run_id"] == run_id, summary
        assert summary["counters"] == 2, summary
        total += written
    # Offline profile uploads add their rows to the records counter.
    assert driftd.metric("driftd_records_total", dataset=DATASET, stage="offline") == total


def test_rerunning_a_task_replaces_its_run_instead_of_counting_it_twice(airflow, driftd):
    date = DATES[0]
    run_id = airflow.runs[date]
    before = {
        name: driftd.metric("driftd_counter_total", dataset=DATASET, name=name, stage="offline")
        for name in ("rows_read", "rows_dropped")
    }
    # `tasks test` with a run id runs the push task again inside that DAG run, as a retry or a
    # cleared task would: same run id, same counters pulled from XCom.
    records = driftd.metric("driftd_records_total", dataset=DATASET, stage="offline")
    airflow.run("tasks", "test", DAG_ID, PUSH_TASK, run_id, name=f"tasks-test-{date}")
    after = {
        name: driftd.metric("driftd_counter_total", dataset=DATASET, name=name, stage="offline")
        for name in before
    }
    assert after == before
    # The profile was uploaded again too, and replaced the run's earlier one.
    assert driftd.metric("driftd_records_total", dataset=DATASET, stage="offline") == records
    runs = driftd_runs(driftd)
    assert set(runs) == set(airflow.runs.values())
    assert runs[run_id]["counters"] == expected_counters(date)


def test_the_hook_against_driftd(driftd):
    hook = DriftdHook(url=driftd.url, backoff=0.01)
    assert hook.test_connection()[0]
    hook.push_counters("hook_check", {"requests": 5}, stage="online")
    hook.push_counters("hook_check", {"requests": 2}, stage="online")
    assert (
        driftd.metric("driftd_counter_total", dataset="hook_check", name="requests", stage="online")
        == 7
    )
    hook.push_counters("hook_check", {"requests": 40}, run_id="r1")
    hook.push_counters("hook_check", {"requests": 41}, run_id="r1")
    assert (
        driftd.metric(
            "driftd_counter_total", dataset="hook_check", name="requests", stage="offline"
        )
        == 41
    )
    assert driftd.metric("driftd_run_counter", dataset="hook_check", name="requests") == 41


def test_driftds_refusal_reaches_the_caller(driftd):
    hook = DriftdHook(url=driftd.url, backoff=0.01)
    # Past the hook's own checks, straight to the daemon: its message must come back.
    body = json.dumps({"stage": "offline", "run_id": "r1", "counters": {"rows read": 1}}).encode()
    with pytest.raises(DriftdError) as raised:
        hook._request(
            "POST", "/v1/datasets/hook_check/counters", data=body, content_type="application/json"
        )
    assert raised.value.status == 400
    assert "rows read" in raised.value.message


def test_a_failed_push_fails_the_task_with_driftds_message(driftd, tmp_path):
    missing = tmp_path / "missing.csv"
    operator = DriftdPushOperator(
        task_id="push", path=str(missing), dataset="hook_check", url=driftd.url,
        driftd_bin=DRIFTD_BIN, run_id="r2", counters={"rows_read": 1},
    )  # fmt: skip
    context = {"ti": None, "logical_date": None}
    with pytest.raises(AirflowException) as raised:
        operator.execute(context)
    assert "exited with status 2" in str(raised.value)
    assert str(missing) in str(raised.value)


def test_an_anomalous_run_can_stop_the_pipeline(driftd, tmp_path):
    """Seven ordinary daily runs teach driftd what a run reads; the eighth reads a tenth of it."""
    data = tmp_path / "day.csv"
    data.write_text("x,y\n" + "".join(f"{i},{i % 7}\n" for i in range(200)))
    for day, rows_read in enumerate([1000, 1004, 996, 1002, 998, 1001, 999], start=1):
        subprocess.run(
            [DRIFTD_BIN, "push", str(data), "--url", driftd.url, "--dataset", "anomaly_check",
             "--run-id", f"day-{day}", "--run-time", f"2026-11-{day:02d}T06:00:00Z",
             "--counter", f"rows_read={rows_read}"],
            check=True, capture_output=True,
        )  # fmt: skip
    operator = DriftdPushOperator(
        task_id="push", path=str(data), dataset="anomaly_check", url=driftd.url,
        driftd_bin=DRIFTD_BIN, run_id="day-8", counters={"rows_read": 100}, fail_on_anomaly=True,
    )  # fmt: skip
    context = {"ti": None, "logical_date": dt.datetime(2026, 11, 8, 6, tzinfo=dt.timezone.utc)}
    with pytest.raises(AirflowException, match="anomalous in: rows_read"):
        operator.execute(context)
    assert driftd.metric("driftd_run_anomalous", dataset="anomaly_check", name="rows_read") == 1
