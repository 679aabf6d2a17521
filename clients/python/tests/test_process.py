"""Processes: a forked worker gets its own queue and sender (as gunicorn's and uvicorn's
pre-fork workers do), and what is queued at interpreter exit is flushed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from driftd_client import DriftdClient

SRC = str(Path(__file__).resolve().parent.parent / "src")


def run_child(work) -> int:
    """Runs `work()` in a forked child; returns its exit status (1 if `work` raised)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover — the child
        status = 1
        try:
            work()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_send_their_own_records_once(stand_in, tmp_path):
    # Created before the fork, as a pre-forking server creates its app; the parent logs and
    # its sender is running (with a batch waiting) when the workers are forked.
    client = DriftdClient(stand_in.url, "d", flush_interval=60, batch_size=1000)
    for i in range(10):
        client.log({"who": "parent"}, id=f"parent-{i}")

    def worker(n: int):
        def work():
            fresh = client.stats()
            for i in range(7):
                client.log({"who": f"child-{n}"}, id=f"child-{n}-{i}")
            ok = client.flush(timeout=10)
            (tmp_path / f"child-{n}.json").write_text(
                json.dumps({"fresh": fresh, "ok": ok, "after": client.stats()})
            )
        return work

    assert [run_child(worker(n)) for n in range(3)] == [0, 0, 0]
    assert client.flush(timeout=10) is True
    for n in range(3):
        report = json.loads((tmp_path / f"child-{n}.json").read_text())
        assert report["fresh"] == {
            "logged": 0, "sent": 0, "dropped": 0, "rejected": 0, "queued": 0, "in_flight": 0,
        }  # fmt: skip
        assert report["ok"] is True and report["after"]["sent"] == 7
    ids = Counter(r["_id"] for r in stand_in.accepted)
    expected = [f"parent-{i}" for i in range(10)]
    expected += [f"child-{n}-{i}" for n in range(3) for i in range(7)]
    assert ids == Counter(expected)  # each record once: nothing the parent queued is resent
    assert client.stats()["sent"] == 10
    client.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_before_any_record_starts_its_sender_on_first_log(stand_in, tmp_path):
    client = DriftdClient(stand_in.url, "d")

    def work():
        assert client._thread is None
        client.log({"a": 1}, id="only")
        assert client.flush(timeout=10) is True

    assert run_child(work) == 0
    assert client._thread is None  # the parent never logged: no thread was started in it
    assert [r["_id"] for r in stand_in.accepted] == ["only"]
    client.close()


def test_records_queued_at_exit_are_flushed(stand_in):
    script = f"""
import sys
sys.path.insert(0, {SRC!r})
from driftd_client import DriftdClient
client = DriftdClient({stand_in.url!r}, "d", flush_interval=60, exit_timeout=5)
for i in range(123):
    client.log({{"i": i}}, id=i)
print(client.stats()["queued"])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.strip() == "123"  # nothing had been sent when the script ended
    assert sorted(r["_id"] for r in stand_in.accepted) == list(range(123))


def test_exit_is_bounded_when_driftd_is_gone():
    script = f"""
import atexit, sys, time
sys.path.insert(0, {SRC!r})
# Registered before driftd_client's own handler, so it runs after it (atexit is LIFO).
atexit.register(lambda: print(round(time.monotonic() - started, 2), client.stats()))
from driftd_client import DriftdClient
client = DriftdClient("http://127.0.0.1:9", "d", exit_timeout=0.5, max_backoff=5)
for i in range(100):
    client.log({{"i": i}})
started = time.monotonic()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    seconds, stats = out.stdout.split(" ", 1)
    # Everything queued is given up (and counted) once the exit bound passes; a generous
    # ceiling on the time only catches an exit that would hang.
    assert "'dropped': 100" in stats and "'queued': 0" in stats, stats
    assert float(seconds) < 5, seconds
