"""DriftdPushOperator's command line and its handling of driftd's exit status, with a stand-in
`driftd` script (the real binary runs in test.sh's end-to-end DAG runs)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import stat
import sys
import textwrap
import types

import pytest
from airflow.exceptions import AirflowException

from driftd_airflow import DriftdPushOperator

LOGICAL_DATE = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.timezone.utc)


def context(**extra):
    ti = types.SimpleNamespace(dag_id="train", task_id="push")
    return {
        "ti": ti,
        "run_id": "scheduled__2026-11-27T08:00:00+00:00",
        "logical_date": LOGICAL_DATE,
        **extra,
    }


def operator(**kwargs):
    kwargs.setdefault("task_id", "push")
    kwargs.setdefault("path", "/data/train.csv")
    kwargs.setdefault("dataset", "search_ranking_inputs")
    kwargs.setdefault("url", "http://127.0.0.1:8471")
    kwargs.setdefault("run_id", "scheduled__2026-11-27T08:00:00+00:00")  # as rendered
    return DriftdPushOperator(**kwargs)


def values(command, flag):
    return [command[i + 1] for i, arg in enumerate(command) if arg == flag]


def test_command_line_of_an_offline_push():
    command = operator(counters={"rows_read": 1200, "rows_dropped": 12}).command(context())
    assert command[:3] == ["driftd", "push", "/data/train.csv"]
    assert values(command, "--url") == ["http://127.0.0.1:8471"]
    assert values(command, "--dataset") == ["search_ranking_inputs"]
    assert values(command, "--stage") == ["offline"]
    assert values(command, "--run-id") == ["scheduled__2026-11-27T08:00:00+00:00"]
    assert values(command, "--run-time") == ["2026-11-27T08:00:00Z"]
    assert values(command, "--label") == ["dag_id=train", "task_id=push"]
    assert values(command, "--counter") == ["rows_read=1200", "rows_dropped=12"]


def test_counters_rendered_as_text_are_parsed():
    # `{{ ti.xcom_pull(...) }}` renders a dict as its Python repr, or JSON with `| tojson`.
    for rendered in (
        "{'rows_read': 10, 'rows_dropped': 1}",
        '{"rows_read": 10, "rows_dropped": 1}',
    ):
        command = operator(counters=rendered).command(context())
        assert values(command, "--counter") == ["rows_read=10", "rows_dropped=1"]


def test_bad_counters_fail_the_task_before_driftd_runs():
    with pytest.raises(AirflowException, match="must match"):
        operator(counters={"rows read": 1}).command(context())
    with pytest.raises(AirflowException, match="negative"):
        operator(counters={"rows": -3}).command(context())
    with pytest.raises(AirflowException, match="not a mapping"):
        operator(counters="rows=3").command(context())


def test_labels_extend_and_override_the_defaults():
    command = operator(labels={"model": "v7", "task_id": "custom"}).command(context())
    assert values(command, "--label") == ["dag_id=train", "task_id=custom", "model=v7"]


def test_online_push_sends_no_run_id():
    command = operator(stage="online").command(context())
    assert values(command, "--stage") == ["online"]
    assert values(command, "--run-id") == []


def test_run_time_falls_back_to_run_after_without_a_logical_date():
    run_after = dt.datetime(2026, 11, 28, 1, 2, 3, tzinfo=dt.timezone.utc)
    ctx = context(logical_date=None, dag_run=types.SimpleNamespace(run_after=run_after))
    assert values(operator().command(ctx), "--run-time") == ["2026-11-28T01:02:03Z"]
    assert values(operator(run_time="2026-01-01T00:00:00Z").command(ctx), "--run-time") == [
        "2026-01-01T00:00:00Z"
    ]


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="stage"):
        operator(stage="training")


def test_url_comes_from_the_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DRIFTD_DEFAULT", "driftd://127.0.0.1:9999")
    command = operator(url=None).command(context())
    assert values(command, "--url") == ["http://127.0.0.1:9999"]


def test_templated_fields():
    assert set(DriftdPushOperator.template_fields) >= {
        "path",
        "dataset",
        "counters",
        "run_id",
        "run_time",
        "labels",
        "driftd_bin",
    }
    assert DriftdPushOperator(task_id="t", path="p", dataset="d").run_id == "{{ run_id }}"


def fake_driftd(tmp_path, script):
    path = tmp_path / "driftd"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(script))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_execute_returns_driftds_summary_and_passes_the_arguments(tmp_path):
    driftd = fake_driftd(
        tmp_path,
        """
        import json, sys
        print("driftd: profiling", file=sys.stderr)
        print(json.dumps({"dataset": "search_ranking_inputs", "rows": 1188, "argv": sys.argv[1:]}))
        """,
    )
    summary = operator(driftd_bin=driftd, counters={"rows_read": 1200}).execute(context())
    assert summary["rows"] == 1188
    assert summary["argv"][:2] == ["push", "/data/train.csv"]
    assert "rows_read=1200" in summary["argv"]


def test_exit_status_2_raises_with_driftds_stderr(tmp_path):
    driftd = fake_driftd(
        tmp_path,
        """
        import sys
        print("driftd: error: /data/train.csv: No such file or directory", file=sys.stderr)
        sys.exit(2)
        """,
    )
    with pytest.raises(AirflowException) as raised:
        operator(driftd_bin=driftd).execute(context())
    assert "exited with status 2" in str(raised.value)
    assert "/data/train.csv: No such file or directory" in str(raised.value)


def test_missing_binary_is_named(tmp_path):
    with pytest.raises(AirflowException, match="driftd executable not found"):
        operator(driftd_bin=str(tmp_path / "nope")).execute(context())


def test_summary_is_the_last_json_line(tmp_path):
    driftd = fake_driftd(
        tmp_path,
        """
        print("uploading")
        print('{"rows": 3}')
        """,
    )
    assert operator(driftd_bin=driftd).execute(context()) == {"rows": 3}


def test_an_interrupted_task_stops_driftd(tmp_path):
    pid_file = tmp_path / "pid"
    driftd = fake_driftd(
        tmp_path,
        f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
        """,
    )

    class Timeout(Exception):
        pass

    def interrupt(*_):
        raise Timeout  # as Airflow's execution_timeout does

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(Timeout):
            operator(driftd_bin=driftd).execute(context())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_an_anomalous_run_is_logged_or_fails_the_task(tmp_path):
    driftd = fake_driftd(
        tmp_path,
        """
        print('{"rows": 120, "anomalous": ["rows_read", "profile.rows"]}')
        """,
    )
    summary = operator(driftd_bin=driftd).execute(context())
    assert summary["anomalous"] == ["rows_read", "profile.rows"]
    with pytest.raises(AirflowException, match="anomalous in: rows_read, profile.rows"):
        operator(driftd_bin=driftd, fail_on_anomaly=True).execute(context())


def test_the_token_reaches_driftd_in_its_environment_never_its_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRIFTD_DEFAULT",
        '{"conn_type": "driftd", "host": "127.0.0.1", "port": 8471, "password": "conn-token-0123456789"}',
    )
    driftd = fake_driftd(
        tmp_path,
        """
        import json, os, sys
        print(json.dumps({"token": os.environ.get("DRIFTD_TOKEN"), "argv": sys.argv[1:]}))
        """,
    )
    summary = operator(driftd_bin=driftd, url=None).execute(context())
    assert summary["token"] == "conn-token-0123456789"
    assert not any("conn-token" in arg for arg in summary["argv"])
    assert "http://127.0.0.1:8471" in summary["argv"]
