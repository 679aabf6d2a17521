"""Example: a pipeline step writes training data, the next one reports it to driftd.

`write_training_data` stands in for a real extract/clean step: it reads raw rows, drops the ones
without a label and writes the rest as CSV, returning the file's path and its counters.
`push_training_data` runs `driftd push`, which profiles the file and uploads the profile and the
counters under the DAG run's id — the same dataset and counter names a model server's driftd
sidecar reports online.

Needs a `driftd_default` connection (e.g. `AIRFLOW_CONN_DRIFTD_DEFAULT=driftd://127.0.0.1:8471`)
and the `driftd` binary on the worker's PATH. Files go to `$DRIFTD_EXAMPLE_DATA_DIR` (default: a
`driftd_example` folder in the temporary directory).
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
from datetime import datetime, timezone

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

from driftd_airflow import DriftdPushOperator

COUNTRIES = ["US", "FR", "DE", "GB", "IN", "BR", "JP", "ES", "IT", "CA"]


def raw_rows(day: datetime):
    """The day's raw rows: 500 + 10 × day-of-month of them, every 25th without a label."""
    rng = random.Random(day.strftime("%Y-%m-%d"))
    for i in range(500 + 10 * day.day):
        yield {
            "query_len": rng.randint(1, 10),
            "latency_ms": round(rng.lognormvariate(3.0, 0.6), 2),
            "country": rng.choice(COUNTRIES),
            "is_mobile": "true" if rng.random() < 0.6 else "false",
            "position": rng.randint(1, 50),
            "user_age": rng.randint(18, 80),
            "clicked": None if i % 25 == 7 else int(rng.random() < 0.1),
        }


@dag(
    dag_id="driftd_training_data",
    schedule="@daily",
    start_date=datetime(2026, 11, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["driftd", "example"],
)
def driftd_training_data():
    @task(multiple_outputs=True)
    def write_training_data(logical_date=None):
        data_dir = os.environ.get(
            "DRIFTD_EXAMPLE_DATA_DIR", os.path.join(tempfile.gettempdir(), "driftd_example")
        )
        os.makedirs(data_dir, exist_ok=True)
        path = os.path.join(data_dir, f"search_ranking_inputs_{logical_date:%Y-%m-%d}.csv")
        rows_read = rows_dropped = 0
        with open(path, "w", newline="") as f:
            writer = None
            for row in raw_rows(logical_date):
                rows_read += 1
                if row["clicked"] is None:
                    rows_dropped += 1
                    continue
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
        return {"path": path, "counters": {"rows_read": rows_read, "rows_dropped": rows_dropped}}

    data = write_training_data()

    DriftdPushOperator(
        task_id="push_training_data",
        path=data["path"],
        dataset="search_ranking_inputs",
        counters=data["counters"],
        labels={"pipeline": "search_ranking"},
    )


driftd_training_data()
