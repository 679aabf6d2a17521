"""`DriftdPushOperator`: profile a file a pipeline step wrote and push it, with the step's
counters, to driftd — one `driftd push` run."""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import signal
import subprocess
from typing import Any, Mapping, Sequence

from airflow.exceptions import AirflowException

try:
    from airflow.sdk import BaseOperator
except ImportError:  # Airflow 2
    from airflow.models import BaseOperator

from driftd_airflow.hook import STAGES, DriftdHook, format_run_time, validate_counters

# driftd push's exit status for "did not happen" (the message is on stderr).
_EXIT_ERROR = 2


class DriftdPushOperator(BaseOperator):
    """Runs `driftd push PATH`: profiles the file locally (CSV, JSON Lines or Parquet), uploads the
    profile, then the counters, and pushes driftd's one-line JSON summary to XCom.

    Offline pushes are keyed by the DAG run id, so a retried or cleared task replaces what it
    pushed before instead of counting it twice.

    :param path: the data file to profile. Templated.
    :param dataset: driftd dataset name. Templated.
    :param counters: counter name → non-negative number, e.g. `{"rows_read": 1200}`; an XComArg
        (a TaskFlow task's output) or a template rendering to a dict or its JSON. Templated.
    :param stage: `offline` (a pipeline run's totals, the default) or `online` (increments).
    :param run_id: the run the profile and counters belong to; the DAG run id by default. Only
        sent for the offline stage. Templated.
    :param run_time: when the run happened (RFC 3339 string or datetime); the DAG run's logical
        date by default (its `run_after` when it has none). Templated.
    :param labels: labels stored with the profile and counters; `dag_id` and `task_id` are added
        unless given. Templated.
    :param url: driftd's base URL; by default taken from the `driftd_conn_id` connection.
    :param driftd_conn_id: Airflow connection of type `driftd` (host, port, scheme).
    :param driftd_bin: the `driftd` executable, a name looked up on PATH or a path. Templated.
    :param extra_args: further `driftd push` arguments, passed as they are.
    :param fail_on_anomaly: fail the task when driftd judges a value of this run anomalous
        against the dataset's earlier runs (a step that read a tenth of its usual rows), so
        that downstream training does not start on it. Otherwise the anomaly is logged as a
        warning (and alerted on by driftd).
    """

    template_fields: Sequence[str] = (
        "path",
        "dataset",
        "counters",
        "stage",
        "run_id",
        "run_time",
        "labels",
        "url",
        "driftd_bin",
    )
    template_fields_renderers = {"counters": "json", "labels": "json"}
    ui_color = "#e8f0f8"

    def __init__(
        self,
        *,
        path: str,
        dataset: str,
        counters: Mapping[str, Any] | str | None = None,
        stage: str = "offline",
        run_id: str | None = "{{ run_id }}",
        run_time: dt.datetime | str | None = None,
        labels: Mapping[str, Any] | None = None,
        url: str | None = None,
        driftd_conn_id: str = DriftdHook.default_conn_name,
        driftd_bin: str = "driftd",
        extra_args: Sequence[str] = (),
        fail_on_anomaly: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if stage not in STAGES and "{{" not in str(stage):
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        self.path = path
        self.dataset = dataset
        self.counters = counters
        self.stage = stage
        self.run_id = run_id
        self.run_time = run_time
        self.labels = labels
        self.url = url
        self.driftd_conn_id = driftd_conn_id
        self.driftd_bin = driftd_bin
        self.extra_args = list(extra_args)
        self.fail_on_anomaly = fail_on_anomaly
        self._process: subprocess.Popen | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        command = self.command(context)
        self.log.info("Running %s", " ".join(command))
        # The token travels in the environment, never on the command line (which ps and this
        # log show).
        env = dict(os.environ)
        token = self._hook().token
        if token:
            env["DRIFTD_TOKEN"] = token
        try:
            self._process = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                # Its own process group, so on_kill can stop driftd and nothing else.
                start_new_session=True,
            )
        except FileNotFoundError:
            raise AirflowException(
                f"driftd executable not found: {self.driftd_bin!r} (install driftd on the "
                "workers or set driftd_bin to its path)"
            ) from None
        try:
            stdout, stderr = self._process.communicate()
        except BaseException:
            # Airflow's execution_timeout (and other interruptions) arrive as exceptions here:
            # driftd must not outlive the task.
            self.on_kill()
            raise
        status = self._process.returncode
        self._process = None
        for line in stderr.splitlines():
            if line.strip():
                self.log.info("driftd: %s", line)
        if status != 0:
            message = stderr.strip() or "(no message on stderr)"
            raise AirflowException(f"driftd push exited with status {status}: {message}")
        summary = _summary(stdout)
        self.log.info("driftd push: %s", json.dumps(summary, sort_keys=True))
        anomalous = summary.get("anomalous") or []
        if anomalous:
            message = f"driftd judged this run anomalous in: {', '.join(map(str, anomalous))}"
            if self.fail_on_anomaly:
                raise AirflowException(message)
            self.log.warning("%s", message)
        return summary

    def command(self, context: Any) -> list[str]:
        """The `driftd push` command line for this task instance (after templating)."""
        stage = str(self.stage)
        if stage not in STAGES:
            raise AirflowException(f"stage must be one of {STAGES}, not {stage!r}")
        try:
            counters = validate_counters(_as_mapping("counters", self.counters))
            labels = _as_mapping("labels", self.labels) or {}
        except ValueError as error:
            raise AirflowException(str(error)) from None
        url = self._hook().base_url
        command = [
            self.driftd_bin, "push", str(self.path),
            "--url", url,
            "--dataset", str(self.dataset),
            "--stage", stage,
        ]  # fmt: skip
        if stage == "offline":
            if not self.run_id:
                raise AirflowException("an offline push needs a run_id")
            command += ["--run-id", str(self.run_id)]
        run_time = format_run_time(self.run_time or _run_time_of(context))
        if run_time:
            command += ["--run-time", run_time]
        task = context.get("ti") or context.get("task_instance")
        default_labels = {
            "dag_id": getattr(task, "dag_id", None) or self.dag_id,
            "task_id": getattr(task, "task_id", None) or self.task_id,
        }
        for key, value in {**default_labels, **labels}.items():
            if value is not None:
                command += ["--label", f"{key}={value}"]
        for name, value in counters.items():
            command += ["--counter", f"{name}={value}"]
        return command + [str(arg) for arg in self.extra_args]

    def _hook(self) -> DriftdHook:
        """The hook for this operator's address and token: `url=` wins over the connection,
        whose password is the token."""
        if self.url:
            return DriftdHook(self.driftd_conn_id, url=str(self.url))
        return DriftdHook(self.driftd_conn_id)

    def on_kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            self.log.info("Stopping driftd push (pid %d)", process.pid)
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _as_mapping(what: str, value: Any) -> Mapping[str, Any] | None:
    """A mapping from a template that rendered to text (`{{ ti.xcom_pull(...) }}` renders a dict
    as its Python repr unless the DAG renders native objects): JSON or a Python literal."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise ValueError(f"{what}: {value!r} is not a mapping") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping, not {type(value).__name__}")
    return value


def _run_time_of(context: Any) -> dt.datetime | None:
    logical_date = context.get("logical_date")
    if logical_date is not None:
        return logical_date
    dag_run = context.get("dag_run")
    return getattr(dag_run, "run_after", None) if dag_run is not None else None


def _summary(stdout: str) -> dict[str, Any]:
    """driftd push prints one JSON line; keep the last one that parses."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {"output": stdout.strip()}
