"""The sender against a local HTTP stand-in for driftd: what goes on the wire, and every answer
driftd can give (202 with refusals, 400, 413, 415, 429/503 with Retry-After, broken connections)."""

from __future__ import annotations

import logging
import threading

from conftest import wait_for

from driftd_client import DriftdClient

TOKEN = "tok-Zq81-never-logged"
VALUE = "value-Xk3-never-logged"


def test_records_arrive_gzipped_with_ids_labels_and_token(stand_in):
    client = DriftdClient(stand_in.url, "search_ranking_inputs", token=TOKEN,
                          labels={"model_version": "v3", "replica": 2})  # fmt: skip
    for i in range(300):
        client.log({"query_len": i, "country": "US"}, id=f"req-{i}")
    client.log({"query_len": 1}, id=7, labels={"experiment": "b"})
    assert client.flush(timeout=5) is True
    assert client.stats() == {
        "logged": 301, "sent": 301, "dropped": 0, "rejected": 0, "queued": 0, "in_flight": 0,
    }  # fmt: skip
    requests = stand_in.requests
    # Bodies of 512 bytes or more are gzipped; the one-record batch is not worth it.
    encodings = [(len(q.records), q.headers.get("content-encoding")) for q in requests]
    assert sorted(encodings, key=lambda e: e[0]) == [(1, None), (300, "gzip")]
    assert all(q.headers["authorization"] == f"Bearer {TOKEN}" for q in requests)
    assert all(q.headers["content-type"] == "application/json" for q in requests)
    got = stand_in.accepted
    assert [r["_id"] for r in got if r["_id"] != 7] == [f"req-{i}" for i in range(300)]
    assert got[0] == {"query_len": 0, "country": "US", "_id": "req-0"}
    by_labels = {tuple(sorted(q.labels.items())): len(q.records) for q in requests}
    assert by_labels == {
        (("model_version", "v3"), ("replica", "2")): 300,
        (("experiment", "b"), ("model_version", "v3"), ("replica", "2")): 1,
    }
    assert requests[0].raw.startswith(b'{"labels":')
    client.close()


def test_token_from_the_environment(stand_in, monkeypatch):
    monkeypatch.setenv("DRIFTD_TOKEN", TOKEN)
    client = DriftdClient(stand_in.url, "d")
    client.log({"a": 1}, id="x")
    assert client.flush(5) is True
    [request] = stand_in.requests
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.raw == b'{"records":[{"a":1,"_id":"x"}]}'
    assert "content-encoding" not in request.headers  # too small to be worth compressing
    client.close()


def test_the_client_waits_what_retry_after_asks_and_loses_nothing(stand_in):
    busy = {"left": 3}

    def respond(request):
        if busy["left"]:
            busy["left"] -= 1
            return 429, {"Retry-After": "1"}, {"error": "driftd is busy; retry after 1 s"}
        return None

    stand_in.respond = respond
    client = DriftdClient(stand_in.url, "d", batch_size=50)
    for i in range(50):
        client.log({"a": i}, id=i)
    assert client.flush(timeout=10) is True
    assert stand_in.statuses() == [429, 429, 429, 202]
    times = [q.at for q in stand_in.requests]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap >= 0.95 for gap in gaps), gaps  # never earlier than Retry-After
    assert [r["a"] for r in stand_in.accepted] == list(range(50))
    assert client.stats()["sent"] == 50 and client.stats()["dropped"] == 0
    client.close()


def test_through_429s_losses_are_what_the_queue_bound_implies(stand_in):
    release = threading.Event()
    stand_in.respond = lambda request: (
        None if release.is_set() else (503, {"Retry-After": "0"}, {"error": "shutting down"})
    )
    client = DriftdClient(stand_in.url, "d", max_queue=100, batch_size=50, max_backoff=0.05)
    for i in range(50):
        client.log({"a": i}, id=i)
    # The sender has taken the first 50 and keeps retrying them.
    assert wait_for(lambda: client.stats()["in_flight"] == 50 and len(stand_in.requests) >= 2)
    for i in range(50, 1000):
        client.log({"a": i}, id=i)
    stats = client.stats()
    assert stats["queued"] == 100 and stats["in_flight"] == 50
    assert stats["dropped"] == 1000 - 100 - 50
    release.set()
    assert client.flush(timeout=10) is False  # some were dropped, and flush says so
    ids = sorted(r["_id"] for r in stand_in.accepted)
    # The batch in flight, then the newest 100: the oldest queued records were dropped.
    assert ids == list(range(50)) + list(range(900, 1000))
    final = client.stats()
    assert final["sent"] == 150 and final["dropped"] == 850 and final["rejected"] == 0
    assert client.flush(timeout=1) is True  # nothing new was lost since
    client.close()


def test_415_to_gzip_switches_compression_off_once(stand_in, caplog):
    stand_in.refuse_gzip = True
    client = DriftdClient(stand_in.url, "d", batch_size=100)
    with caplog.at_level(logging.WARNING, logger="driftd_client"):
        for round_ in range(3):
            for i in range(100):
                client.log({"text": VALUE, "i": i}, id=f"{round_}-{i}")
            assert client.flush(timeout=5) is True
    assert stand_in.statuses() == [415, 202, 202, 202]
    assert all("content-encoding" not in q.headers for q in stand_in.requests[1:])
    assert len(stand_in.accepted) == 300 and client.stats()["sent"] == 300
    assert caplog.text.count("refused a gzip-compressed body (415)") == 1
    assert VALUE not in caplog.text
    client.close()


def test_400_counts_records_as_rejected_and_is_not_retried(stand_in, caplog):
    stand_in.respond = lambda request: (400, {}, {"error": "invalid JSON at line 1, column 2"})
    client = DriftdClient(stand_in.url, "d", token=TOKEN)
    with caplog.at_level(logging.WARNING, logger="driftd_client"):
        for i in range(20):
            client.log({"text": VALUE}, id=i)
        assert client.flush(timeout=5) is False
    assert stand_in.statuses() == [400]
    assert client.stats()["rejected"] == 20 and client.stats()["sent"] == 0
    assert "refused 20 records (400): invalid JSON at line 1, column 2" in caplog.text
    assert VALUE not in caplog.text and TOKEN not in caplog.text
    client.close()


def test_records_driftd_refuses_one_by_one_count_as_rejected(stand_in):
    stand_in.respond = lambda request: (
        202, {}, {"accepted": len(request.records) - 2, "rejected": 2,
                  "errors": [{"index": 1, "reason": "expected a JSON object"}]},
    )  # fmt: skip
    client = DriftdClient(stand_in.url, "d")
    for i in range(10):
        client.log({"a": i})
    assert client.flush(timeout=5) is False
    stats = client.stats()
    assert stats["sent"] == 8 and stats["rejected"] == 2
    client.close()


def test_413_halves_the_batch_and_a_record_too_large_alone_is_rejected(stand_in):
    stand_in.max_body_bytes = 2000
    client = DriftdClient(stand_in.url, "d", compression=None, batch_size=100)
    for i in range(100):
        client.log({"pad": "x" * 80, "i": i})
    client.log({"pad": "y" * 5000, "i": -1})
    assert client.flush(timeout=10) is False
    assert sorted(r["i"] for r in stand_in.accepted) == list(range(100))
    stats = client.stats()
    assert stats["sent"] == 100 and stats["rejected"] == 1 and stats["dropped"] == 0
    # The client keeps its smaller bound: the next batch goes through without a 413.
    before = len(stand_in.requests)
    for i in range(40):
        client.log({"pad": "x" * 80, "i": i})
    assert client.flush(timeout=5) is True
    assert 413 not in stand_in.statuses()[before:]
    client.close()


def test_broken_connections_and_500s_are_retried(stand_in):
    failures = {"left": 2}

    def respond(request):
        if failures["left"]:
            failures["left"] -= 1
            return 500, {}, {"error": "internal error"}
        return None

    stand_in.respond = respond
    client = DriftdClient(stand_in.url, "d", max_backoff=0.1)
    for i in range(10):
        client.log({"a": i})
    assert client.flush(timeout=5) is True
    assert stand_in.statuses() == [500, 500, 202]
    client.close()


def test_compressed_bodies_are_gzip(stand_in):
    client = DriftdClient(stand_in.url, "d", batch_size=200)
    for i in range(200):
        client.log({"country": "US", "query_len": i})
    assert client.flush(timeout=5) is True
    [request] = stand_in.requests
    assert request.headers["content-encoding"] == "gzip"
    assert request.wire_size < len(request.raw) / 4, (request.wire_size, len(request.raw))
    client.close()
