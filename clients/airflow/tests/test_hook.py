"""DriftdHook against a tiny local HTTP server that answers what each test scripts."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from driftd_airflow import DriftdError, DriftdHook
from driftd_airflow.hook import format_run_time, validate_counters


class ScriptedDriftd:
    """Answers requests with the scripted (status, headers, body) in turn, the last one forever,
    and records each request."""

    def __init__(self, port=0):
        self.answers = [(200, {}, {"ok": True})]
        self.requests = []
        test = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                test.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                index = min(len(test.requests), len(test.answers)) - 1
                status, headers, payload = test.answers[index]
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    """A loopback port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def driftd():
    server = ScriptedDriftd()
    yield server
    server.close()


@pytest.fixture
def waits():
    return []


def hook_for(url, waits, **kwargs):
    kwargs.setdefault("backoff", 0.01)
    return DriftdHook(url=url, sleep=waits.append, **kwargs)


def test_push_counters_posts_one_runs_totals(driftd, waits):
    driftd.answers = [(200, {}, {"dataset": "d", "stage": "offline", "run_id": "r1"})]
    answer = hook_for(driftd.url, waits).push_counters(
        "search_ranking_inputs",
        {"rows_read": 1200, "rows_dropped": 12, "fraction": 0.5},
        run_id="r1",
        run_time=dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.timezone.utc),
        labels={"dag_id": "train", "attempt": 2},
    )
    assert answer == {"dataset": "d", "stage": "offline", "run_id": "r1"}
    [request] = driftd.requests
    assert request["method"] == "POST"
    assert request["path"] == "/v1/datasets/search_ranking_inputs/counters"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "stage": "offline",
        "run_id": "r1",
        "run_time": "2026-11-27T08:00:00Z",
        "counters": {"rows_read": 1200, "rows_dropped": 12, "fraction": 0.5},
        "labels": {"dag_id": "train", "attempt": "2"},
    }
    assert waits == []


def test_online_counters_carry_no_run_id(driftd, waits):
    hook_for(driftd.url, waits).push_counters("d", {"requests": 3}, stage="online")
    body = json.loads(driftd.requests[0]["body"])
    assert body == {"stage": "online", "counters": {"requests": 3}}


def test_dataset_name_is_escaped_in_the_path(driftd, waits):
    hook_for(driftd.url, waits).get_counters("a b/c")
    assert driftd.requests[0]["path"] == "/v1/datasets/a%20b%2Fc/counters"


def test_400_raises_with_driftds_message_and_is_not_retried(driftd, waits):
    driftd.answers = [(400, {}, {"error": 'counter name "1x" is invalid'})]
    with pytest.raises(DriftdError) as raised:
        hook_for(driftd.url, waits).push_counters("d", {"rows": 1}, run_id="r1")
    assert raised.value.status == 400
    assert raised.value.message == 'counter name "1x" is invalid'
    assert "driftd answered 400" in str(raised.value)
    assert 'counter name "1x" is invalid' in str(raised.value)
    assert len(driftd.requests) == 1
    assert waits == []


def test_4xx_without_json_keeps_the_text(driftd, waits):
    driftd.answers = [(404, {}, b"no such route")]
    with pytest.raises(DriftdError) as raised:
        hook_for(driftd.url, waits).get_counters("d")
    assert (raised.value.status, raised.value.message) == (404, "no such route")


def test_429_is_retried_after_what_retry_after_asks(driftd, waits):
    driftd.answers = [
        (429, {"Retry-After": "3"}, {"error": "queue full"}),
        (200, {}, {"ok": True}),
    ]
    answer = hook_for(driftd.url, waits).push_counters("d", {"rows": 1}, run_id="r1")
    assert answer == {"ok": True}
    assert len(driftd.requests) == 2
    assert driftd.requests[0]["body"] == driftd.requests[1]["body"]
    assert waits == [3.0]


def test_retry_after_as_an_http_date(driftd, waits):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=20)
    driftd.answers = [
        (
            503,
            {"Retry-After": email.utils.format_datetime(later, usegmt=True)},
            {"error": "shutting down"},
        ),
        (200, {}, {}),
    ]
    hook_for(driftd.url, waits).get_counters("d")
    [wait] = waits
    assert 15 <= wait <= 21


def test_retry_after_is_capped_by_max_wait(driftd, waits):
    driftd.answers = [(429, {"Retry-After": "3600"}, {"error": "busy"}), (200, {}, {})]
    hook_for(driftd.url, waits, max_wait=5).get_counters("d")
    assert waits == [5]


def test_500_is_retried_with_growing_backoff_until_it_succeeds(driftd, waits):
    driftd.answers = [(500, {}, {"error": "internal error"})] * 3 + [(200, {}, {"ok": 1})]
    answer = hook_for(driftd.url, waits, backoff=1.0).push_counters("d", {"rows": 1}, run_id="r")
    assert answer == {"ok": 1}
    assert len(driftd.requests) == 4
    # Exponential with jitter: attempt n waits between half and all of backoff × 2^n.
    for n, wait in enumerate(waits):
        assert 2**n / 2 <= wait <= 2**n


def test_persistent_500_gives_up_after_the_retries(driftd, waits):
    driftd.answers = [(500, {}, {"error": "internal error"})]
    with pytest.raises(DriftdError) as raised:
        hook_for(driftd.url, waits, retries=2).push_counters("d", {"rows": 1}, run_id="r")
    assert raised.value.status == 500
    assert raised.value.message == "internal error"
    assert len(driftd.requests) == 3
    assert len(waits) == 2


def test_connection_refused_is_retried_then_raised(waits):
    port = free_port()
    with pytest.raises(DriftdError) as raised:
        hook_for(f"http://127.0.0.1:{port}", waits, retries=3).get_counters("d")
    assert raised.value.status is None
    assert "refused" in raised.value.message.lower()
    assert len(waits) == 3


def test_connection_refused_then_the_daemon_comes_up(waits):
    port = free_port()
    servers = []

    def sleep(wait):
        waits.append(wait)
        if not servers:  # driftd starts while the client waits to retry
            servers.append(ScriptedDriftd(port))

    try:
        hook = DriftdHook(url=f"http://127.0.0.1:{port}", backoff=0.01, sleep=sleep)
        assert hook.get_counters("d") == {"ok": True}
    finally:
        for server in servers:
            server.close()
    assert len(waits) == 1
    assert len(servers[0].requests) == 1


def test_offline_needs_a_run_id_and_online_takes_none(waits):
    hook = hook_for("http://127.0.0.1:9", waits)
    with pytest.raises(ValueError, match="run_id"):
        hook.push_counters("d", {"rows": 1})
    with pytest.raises(ValueError, match="run_id"):
        hook.push_counters("d", {"rows": 1}, stage="online", run_id="r")
    with pytest.raises(ValueError, match="stage"):
        hook.push_counters("d", {"rows": 1}, stage="training", run_id="r")


@pytest.mark.parametrize(
    "counters, problem",
    [
        ({"1rows": 1}, "must match"),
        ({"rows-read": 1}, "must match"),
        ({"rows": -1}, "negative"),
        ({"rows": float("nan")}, "not finite"),
        ({"rows": float("inf")}, "not finite"),
        ({"rows": True}, "not a number"),
        ({"rows": None}, "not a number"),
        ({"rows": "many"}, "not a number"),
        (["rows"], "mapping"),
    ],
)
def test_bad_counters_are_refused_before_sending(counters, problem):
    with pytest.raises(ValueError, match=problem):
        validate_counters(counters)


def test_counter_values_from_templates_become_numbers():
    assert validate_counters({"a": "12", "b": " 0.25 ", "c": 3.0, "d": 7}) == {
        "a": 12,
        "b": 0.25,
        "c": 3.0,
        "d": 7,
    }


def test_run_time_is_rfc3339_utc():
    cet = dt.timezone(dt.timedelta(hours=1))
    assert format_run_time(dt.datetime(2026, 11, 27, 9, 0, tzinfo=cet)) == "2026-11-27T08:00:00Z"
    assert format_run_time(dt.date(2026, 11, 27)) == "2026-11-27T00:00:00Z"
    assert format_run_time("2026-11-27T09:00:00+01:00") == "2026-11-27T08:00:00Z"
    assert format_run_time("2026-11-27T08:00:00+00:00") == "2026-11-27T08:00:00Z"
    assert format_run_time("2026-11-27T08:00:00.5Z") == "2026-11-27T08:00:00.500000Z"
    assert format_run_time("1795766400") == "1795766400"  # seconds since the epoch: driftd's
    assert format_run_time(None) is None
    with pytest.raises(ValueError, match="time zone"):
        format_run_time(dt.datetime(2026, 11, 27))


def test_connection_gives_scheme_host_and_port(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRIFTD_DEFAULT",
        json.dumps(
            {"conn_type": "driftd", "host": "driftd.internal", "port": 8471, "schema": "https"}
        ),
    )
    assert DriftdHook().base_url == "https://driftd.internal:8471"


def test_connection_scheme_defaults_to_http(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DRIFTD_OTHER", "driftd://127.0.0.1:9000")
    assert DriftdHook("driftd_other").base_url == "http://127.0.0.1:9000"


def test_a_url_wins_over_the_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DRIFTD_DEFAULT", "driftd://elsewhere:1")
    assert DriftdHook(url="http://127.0.0.1:8471/").base_url == "http://127.0.0.1:8471"


def test_test_connection_reports_health(driftd, waits):
    assert hook_for(driftd.url, waits).test_connection()[0] is True
    driftd.answers = [(503, {}, {"error": "database unreachable"})]
    ok, message = hook_for(driftd.url, waits).test_connection()
    assert not ok and "database unreachable" in message


def test_the_connections_password_is_sent_as_a_bearer_token(driftd, waits, monkeypatch):
    host, port = driftd.url.removeprefix("http://").split(":")
    monkeypatch.delenv("DRIFTD_TOKEN", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRIFTD_DEFAULT",
        json.dumps({"conn_type": "driftd", "host": host, "port": int(port), "password": "s3cret-token-0123456789"}),
    )
    DriftdHook(sleep=waits.append).get_counters("d")
    assert driftd.requests[-1]["headers"]["Authorization"] == "Bearer s3cret-token-0123456789"
    # token= wins over the connection.
    DriftdHook(token="explicit-token-0123456789", sleep=waits.append).get_counters("d")
    assert driftd.requests[-1]["headers"]["Authorization"] == "Bearer explicit-token-0123456789"


def test_a_url_without_a_token_uses_driftd_token_or_sends_none(driftd, waits, monkeypatch):
    monkeypatch.delenv("DRIFTD_TOKEN", raising=False)
    hook_for(driftd.url, waits).get_counters("d")
    assert "Authorization" not in driftd.requests[-1]["headers"]
    monkeypatch.setenv("DRIFTD_TOKEN", "from-the-environment-0123")
    hook_for(driftd.url, waits).get_counters("d")
    assert driftd.requests[-1]["headers"]["Authorization"] == "Bearer from-the-environment-0123"


def test_a_401_names_driftds_reason_without_the_token(driftd, waits):
    driftd.answers = [(401, {"WWW-Authenticate": 'Bearer realm="driftd"'}, {"error": "the bearer token is not valid"})]
    with pytest.raises(DriftdError) as raised:
        hook_for(driftd.url, waits, token="wrong-token-0123456789").get_counters("d")
    assert raised.value.status == 401 and "the bearer token is not valid" in str(raised.value)
    assert "wrong-token" not in str(raised.value)
    assert len(driftd.requests) == 1, "a 401 is not retried"
