"""`DriftdHook`: driftd's HTTP API from Airflow (counters, profiles, health).

The connection (type `driftd`, default id `driftd_default`) gives the daemon's address: `host`,
`port` and `schema` (the URL scheme, `http` unless set; a host written as a full URL is kept as it
is). A URL passed to the hook wins over the connection. driftd's API token is the connection's
password (or `token=`, or the `DRIFTD_TOKEN` variable); it is sent as `Authorization: Bearer …`
and never appears in logs or errors.

Requests go through the standard library. Transient failures — connection errors, timeouts, `429`
and `5xx` answers — are retried with exponential backoff, waiting at least what the daemon's
`Retry-After` asks; offline counters are idempotent per run id, so a retry never double counts.
Any other answer raises `DriftdError` carrying driftd's own error message.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
import os
import random
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from numbers import Real
from typing import Any, Callable, Mapping

from airflow.exceptions import AirflowException

try:  # Airflow 3: the Task SDK is what DAG authors and their hooks build on.
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 2
    from airflow.hooks.base import BaseHook

STAGES = ("offline", "online")
# The same rule driftd applies: names that are valid Prometheus label values and identifiers.
COUNTER_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_DEFAULT_PORT = 8471


class DriftdError(AirflowException):
    """driftd refused a request, or could not be reached after the retries.

    `status` is the HTTP status (None when there was no answer) and `message` driftd's own error
    text (the `error` field of its JSON answer) or the connection error.
    """

    def __init__(self, message: str, status: int | None = None, url: str | None = None):
        self.status = status
        self.message = message
        self.url = url
        where = f" ({url})" if url else ""
        prefix = f"driftd answered {status}" if status is not None else "driftd unreachable"
        super().__init__(f"{prefix}{where}: {message}")


def validate_counters(counters: Mapping[str, Any] | None) -> dict[str, int | float]:
    """Checks counter names and values the way driftd does, before anything is sent.

    Values may be numbers or numeric strings (what a Jinja template renders to); they must be
    finite and non-negative. Integral values stay integers.
    """
    if counters is None:
        return {}
    if not isinstance(counters, Mapping):
        raise ValueError(
            f"counters must be a mapping of name to number, not {type(counters).__name__}"
        )
    checked: dict[str, int | float] = {}
    for name, value in counters.items():
        if not isinstance(name, str) or not COUNTER_NAME.match(name):
            raise ValueError(f"counter name {name!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
        checked[name] = _counter_value(name, value)
    return checked


def _counter_value(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"counter {name}: {value!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"counter {name}: {value!r} is not a number") from None
    if not isinstance(value, Real):
        raise ValueError(f"counter {name}: {value!r} is not a number")
    if isinstance(value, float) or not float(value).is_integer():
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"counter {name}: {value!r} is not finite")
    else:
        value = int(value)  # numpy integers and the like become plain ints
    if value < 0:
        raise ValueError(f"counter {name}: {value!r} is negative; counters are non-negative")
    return value


def format_run_time(run_time: dt.datetime | dt.date | str | None) -> str | None:
    """RFC 3339 in UTC (`2026-11-27T08:00:00Z`), the form driftd takes. A string with another
    offset (`{{ ts }}` in a non-UTC deployment) is converted; any other string is passed through
    for driftd to judge."""
    if run_time is None or isinstance(run_time, str):
        if not run_time:
            return None
        try:
            parsed = dt.datetime.fromisoformat(run_time.strip().replace("Z", "+00:00"))
        except ValueError:
            return run_time
        if parsed.tzinfo is None:
            return run_time
        run_time = parsed
    if not isinstance(run_time, dt.datetime):  # a date: its midnight, UTC
        run_time = dt.datetime(run_time.year, run_time.month, run_time.day, tzinfo=dt.timezone.utc)
    if run_time.tzinfo is None:
        raise ValueError(f"run_time {run_time.isoformat()} has no time zone")
    utc = run_time.astimezone(dt.timezone.utc)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


class DriftdHook(BaseHook):
    """Talks to a driftd daemon.

    :param driftd_conn_id: Airflow connection with driftd's host, port and scheme.
    :param url: driftd's base URL (`http://127.0.0.1:8471`); overrides the connection.
    :param timeout: seconds for one request.
    :param retries: further attempts after a transient failure.
    :param backoff: first wait between attempts, in seconds; doubles each time, with jitter.
    :param max_wait: the longest single wait, `Retry-After` included.
    :param token: driftd's API token; overrides the connection's password and `DRIFTD_TOKEN`.
    """

    conn_name_attr = "driftd_conn_id"
    default_conn_name = "driftd_default"
    conn_type = "driftd"
    hook_name = "driftd"

    def __init__(
        self,
        driftd_conn_id: str = default_conn_name,
        *,
        url: str | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        token: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.driftd_conn_id = driftd_conn_id
        self._url = url.rstrip("/") if url else None
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self._token = token
        self._token_resolved = token is not None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: driftd's address, and its API token as the password."""
        return {
            "hidden_fields": ["login", "extra"],
            "relabeling": {"schema": "Scheme (http or https)", "password": "API token"},
            "placeholders": {"host": "127.0.0.1", "port": str(_DEFAULT_PORT), "schema": "http"},
        }

    @property
    def base_url(self) -> str:
        """`scheme://host:port` of the daemon, from the URL given or the connection."""
        if self._url is None:
            conn = self.get_connection(self.driftd_conn_id)
            host = (conn.host or "").strip()
            if not host:
                raise DriftdError(f"connection {self.driftd_conn_id!r} has no host", url=None)
            if "://" in host:
                url = host
            else:
                scheme = (conn.schema or "http").strip() or "http"
                url = f"{scheme}://{host}"
                if conn.port:
                    url += f":{conn.port}"
            self._url = url.rstrip("/")
            if not self._token_resolved:
                self._token = conn.password or None
                self._token_resolved = True
        return self._url

    @property
    def token(self) -> str | None:
        """The API token sent, if any: `token=`, else the connection's password (when the
        connection gives the address), else `DRIFTD_TOKEN`."""
        if not self._token_resolved and self._url is None:
            self.base_url  # reads the connection, and its password
        return self._token or os.environ.get("DRIFTD_TOKEN") or None

    # -- API -------------------------------------------------------------------------------

    def push_counters(
        self,
        dataset: str,
        counters: Mapping[str, Any],
        stage: str = "offline",
        run_id: str | None = None,
        run_time: dt.datetime | str | None = None,
        labels: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Reports counters: an offline run's totals (replacing what the same `run_id` reported
        before) or online increments. Returns driftd's JSON answer."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        if stage == "offline" and not run_id:
            raise ValueError("offline counters need a run_id: they are one run's totals")
        if stage == "online" and run_id:
            raise ValueError("online counters are increments and take no run_id")
        body: dict[str, Any] = {"stage": stage, "counters": validate_counters(counters)}
        if run_id:
            body["run_id"] = str(run_id)
        formatted = format_run_time(run_time)
        if formatted:
            body["run_time"] = formatted
        if labels:
            body["labels"] = {str(k): str(v) for k, v in labels.items()}
        return self._request(
            "POST",
            self._dataset_path(dataset, "counters"),
            data=json.dumps(body).encode(),
            content_type="application/json",
        )

    def get_counters(self, dataset: str) -> dict[str, Any]:
        """Each counter of the dataset with its offline and online figures."""
        return self._request("GET", self._dataset_path(dataset, "counters"))

    def push_profile(
        self,
        dataset: str,
        profile_path: str,
        stage: str = "offline",
        run_id: str | None = None,
        part: str | None = None,
    ) -> dict[str, Any]:
        """Uploads a profile file written by `driftd profile --out`. Uploading the same run and
        part again replaces it."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        query = {"stage": stage}
        if run_id:
            query["run_id"] = str(run_id)
        if part:
            query["part"] = str(part)
        with open(profile_path, "rb") as f:
            data = f.read()
        path = self._dataset_path(dataset, "profiles") + "?" + urllib.parse.urlencode(query)
        return self._request("POST", path, data=data, content_type="application/octet-stream")

    def test_connection(self) -> tuple[bool, str]:
        """What Airflow's "Test" button on the connection form runs."""
        try:
            self._request("GET", "/healthz", retries=0)
        except (DriftdError, ValueError) as error:
            return False, str(error)
        return True, f"driftd at {self.base_url} is up"

    # -- transport -------------------------------------------------------------------------

    @staticmethod
    def _dataset_path(dataset: str, what: str) -> str:
        if not dataset:
            raise ValueError("dataset must not be empty")
        return f"/v1/datasets/{urllib.parse.quote(dataset, safe='')}/{what}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        content_type: str | None = None,
        retries: int | None = None,
    ) -> dict[str, Any]:
        url = self.base_url + path
        headers = {"Accept": "application/json", "User-Agent": "driftd-airflow"}
        if content_type:
            headers["Content-Type"] = content_type
        token = self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        retries = self.retries if retries is None else retries
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return _json_body(response.read())
            except urllib.error.HTTPError as answer:
                body = answer.read()
                message = _error_message(body, answer.reason)
                transient = answer.code == 429 or answer.code >= 500
                if not transient or attempt >= retries:
                    raise DriftdError(message, status=answer.code, url=url) from None
                wait = max(self._backoff(attempt), _retry_after(answer.headers.get("Retry-After")))
                failure = f"{answer.code} {message}"
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as error:
                reason = getattr(error, "reason", error)
                if attempt >= retries:
                    raise DriftdError(str(reason), url=url) from error
                wait = self._backoff(attempt)
                failure = str(reason)
            wait = min(wait, self.max_wait)
            attempt += 1
            self.log.warning(
                "driftd request failed, retrying: %s %s: %s (attempt %d of %d, next in %.1fs)",
                method,
                url,
                failure,
                attempt,
                retries + 1,
                wait,
            )
            self._sleep(wait)

    def _backoff(self, attempt: int) -> float:
        # Full jitter keeps many pipeline tasks that failed together from retrying together.
        return self.backoff * (2**attempt) * (0.5 + random.random() / 2)


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError:
        return {"body": body.decode("utf-8", "replace")}


def _error_message(body: bytes, reason: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text[:500] or str(reason)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return parsed["error"]
    return json.dumps(parsed)[:500]


def _retry_after(value: str | None) -> float:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date."""
    if not value:
        return 0.0
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
