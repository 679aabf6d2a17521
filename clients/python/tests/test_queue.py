"""The caller's side with nobody listening, bad input, and the wire helpers."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import logging
import socket
import uuid

import pytest

from driftd_client import DriftdClient
from driftd_client import _wire


def dead_url() -> str:
    """An address where nothing listens (a port just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_200k_logs_with_nobody_listening_drop_what_the_bound_implies():
    client = DriftdClient(dead_url(), "d", max_queue=1000, batch_size=100, max_backoff=0.2)
    for i in range(200_000):
        assert client.log({"query_len": i % 7, "country": "US"}, id=f"req-{i}") is None
    stats = client.stats()
    assert stats["logged"] == 200_000
    assert stats["queued"] == 1000
    # The sender holds one batch (at most batch_size) it keeps retrying; the rest is dropped.
    assert 0 <= stats["in_flight"] <= 100
    assert stats["dropped"] == 200_000 - 1000 - stats["in_flight"]
    assert stats["sent"] == 0 and stats["rejected"] == 0
    assert client.flush(timeout=0.2) is False
    assert client.close(timeout=0.5) is False
    after = client.stats()
    assert after["dropped"] == 200_000 and after["queued"] == 0 and after["in_flight"] == 0


def test_log_never_raises_on_bad_input(caplog):
    client = DriftdClient(dead_url(), "d", flush_interval=60)
    secret = "s3cr3t-value"

    class Opaque:
        def __repr__(self):
            return secret

    client.log(None)  # type: ignore[arg-type]  # not a mapping
    client.log([1, 2, 3])  # type: ignore[arg-type]  # not a mapping either
    client.log({"a": 1}, labels=42)  # type: ignore[arg-type]  # labels not a mapping
    stats = client.stats()
    assert stats["logged"] == 3 and stats["rejected"] == 3 and stats["queued"] == 0
    client.log({"a": Opaque()}, id=1)  # refused by the sender: no JSON form
    client.close(timeout=0.3)
    assert client.stats()["rejected"] == 4
    assert secret not in caplog.text


def test_logs_after_close_are_dropped_and_counted():
    client = DriftdClient(dead_url(), "d")
    client.close(timeout=0.1)
    client.log({"a": 1})
    assert client.stats() == {
        "logged": 1, "sent": 0, "dropped": 1, "rejected": 0, "queued": 0, "in_flight": 0,
    }  # fmt: skip
    assert client.close() is False  # idempotent; the drop shows


def test_constructor_refuses_bad_settings():
    with pytest.raises(ValueError, match="url must be"):
        DriftdClient("127.0.0.1:8471", "d")
    with pytest.raises(ValueError, match="max_queue"):
        DriftdClient("http://127.0.0.1:8471", "d", max_queue=0)
    with pytest.raises(ValueError, match="compression"):
        DriftdClient("http://127.0.0.1:8471", "d", compression="br")
    with pytest.raises(ValueError, match="stage"):
        DriftdClient("http://127.0.0.1:8471", "d", stage="offline")


def test_repr_shows_no_token(monkeypatch):
    monkeypatch.setenv("DRIFTD_TOKEN", "tok-from-env")
    client = DriftdClient("http://user:pw@127.0.0.1:8471", "d", token="tok-123")
    assert "tok" not in repr(client) and "pw" not in repr(client)
    assert repr(client) == "DriftdClient('http://127.0.0.1:8471', 'd')"
    client.close(0.1)


class Colour(enum.Enum):
    RED = "red"


class FakeScalar:
    """Quacks like a NumPy scalar: `shape == ()` and `.item()`."""

    shape = ()

    def __init__(self, value):
        self.value = value

    def item(self):
        return self.value


class FakeArray:
    shape = (2,)

    def tolist(self):
        return [1.5, 2.5]


def test_records_encode_as_json():
    record = {
        "n": FakeScalar(3), "v": FakeArray(), "when": dt.datetime(2026, 1, 2, 3, 4, 5),
        "price": decimal.Decimal("1.25"), "colour": Colour.RED, "u": uuid.UUID(int=1),
        "tags": {"x"}, "raw": b"caf\xc3\xa9", "nan": float("nan"), "inf": [float("inf"), 1.0],
        "numpy_nan": FakeScalar(float("nan")),
    }  # fmt: skip
    assert json.loads(_wire.encode_record(record)) == {
        "n": 3, "v": [1.5, 2.5], "when": "2026-01-02T03:04:05", "price": 1.25,
        "colour": "red", "u": "00000000-0000-0000-0000-000000000001", "tags": ["x"],
        "raw": "café", "nan": None, "inf": [None, 1.0], "numpy_nan": None,
    }  # fmt: skip
    with pytest.raises(_wire.Unencodable, match="object has no JSON form"):
        _wire.encode_record({"o": object()})
    looped: dict = {}
    looped["self"] = looped
    with pytest.raises(_wire.Unencodable):
        _wire.encode_record(looped)


def test_bodies_and_headers():
    records = [{"a": i} for i in range(5)] + [{"o": object()}, {"n": float("nan")}]
    pieces, problems = _wire.encode_pieces(records, per_piece=2)
    assert problems == ["a value of type object has no JSON form"]
    assert [p.data for p in pieces] == [b'{"a":0},{"a":1}', b'{"a":2},{"a":3}', b'{"a":4}',
                                        b'{"n":null}']  # fmt: skip
    assert json.loads(_wire.body(pieces, ())) == {"records": records[:5] + [{"n": None}]}
    payload = _wire.body(pieces[:1], (("model_version", "v3"),))
    assert json.loads(payload) == {"labels": {"model_version": "v3"}, "records": records[:2]}
    # Bodies of at most 20 bytes: one piece each; a piece larger than that alone is taken
    # apart into its records, each a body of its own.
    bodies = _wire.split_by_bytes(pieces[:3], 20)
    assert [[p.data for p in b] for b in bodies] == [
        [b'{"a":0},{"a":1}'], [b'{"a":2},{"a":3}'], [b'{"a":4}']
    ]
    bodies = _wire.split_by_bytes(pieces[:2], 12)
    assert [[p.data for p in b] for b in bodies] == [
        [b'{"a":0}'], [b'{"a":1}'], [b'{"a":2}'], [b'{"a":3}']
    ]
    assert len(_wire.split_by_bytes(pieces[:2], 100)) == 1
    assert _wire.retry_after("3") == 3.0
    assert _wire.retry_after(" 0.5 ") == 0.5
    now = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.timezone.utc)
    assert _wire.retry_after("Thu, 01 Jan 2026 00:00:07 GMT", now) == 7.0
    assert _wire.retry_after("soon") is None and _wire.retry_after(None) is None


def test_warnings_are_rate_limited(caplog):
    client = DriftdClient(dead_url(), "d")
    with caplog.at_level(logging.WARNING, logger="driftd_client"):
        for _ in range(5):
            client._warn("k", "Something %s", "happened")
    assert caplog.text.count("Something happened") == 1
    client.close(0.1)
