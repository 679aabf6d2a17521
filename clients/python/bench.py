"""What `log()` costs a model server's request thread, in microseconds per call.

    python bench.py                                   # nobody listening (driftd gone)
    DRIFTD_URL=http://127.0.0.1:8471 python bench.py  # and against a running driftd

Against driftd it also reports how fast the background sender delivers (records/s until
`flush` returns), the sender competing with the logging thread for the GIL as it would in a
server. The target: a few µs per call, whatever driftd does.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from driftd_client import DriftdClient  # noqa: E402

CALLS = 200_000
ROUNDS = 5


def record(i: int) -> dict:
    return {"query_len": i % 17, "country": "US", "score": i * 1e-6, "is_mobile": i % 2 == 0,
            "page": "search", "results": 10}  # fmt: skip


def per_call(client: DriftdClient, calls: int) -> float:
    log = client.log
    started = time.perf_counter()
    for i in range(calls):
        log(record(i), id=i)
    return (time.perf_counter() - started) / calls * 1e6


def baseline(calls: int) -> float:
    """Building the record dict alone, to subtract from what `log` seems to cost."""
    started = time.perf_counter()
    for i in range(calls):
        record(i)
    return (time.perf_counter() - started) / calls * 1e6


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def main() -> None:
    base = statistics.median(baseline(CALLS) for _ in range(ROUNDS))
    print(f"python {sys.version.split()[0]}; {CALLS:,} calls x {ROUNDS} rounds, "
          f"building each 6-feature record: {base:.2f} µs (not counted below)")  # fmt: skip

    times, drops = [], []
    for _ in range(ROUNDS):
        client = DriftdClient(dead_url(), "bench", max_queue=10_000)
        times.append(per_call(client, CALLS) - base)
        drops.append(client.dropped)
        client.close(timeout=0.1)
    print(f"nobody listening: log() {statistics.median(times):.2f} µs median "
          f"(min {min(times):.2f}, max {max(times):.2f}); dropped {drops[0]:,} of {CALLS:,} "
          f"with max_queue=10,000")  # fmt: skip

    url = os.environ.get("DRIFTD_URL")
    if not url:
        print("driftd: set DRIFTD_URL to measure against a running driftd")
        return
    times, rates = [], []
    for r in range(ROUNDS):
        client = DriftdClient(url, f"bench_client_{r}", max_queue=CALLS, batch_size=1000)
        started = time.perf_counter()
        times.append(per_call(client, CALLS) - base)
        ok = client.flush(timeout=120)
        rates.append(CALLS / (time.perf_counter() - started))
        stats = client.stats()
        client.close()
        if not ok:
            print(f"round {r}: flush returned False: {stats}")
    print(f"driftd at {url}: log() {statistics.median(times):.2f} µs median "
          f"(min {min(times):.2f}, max {max(times):.2f}); delivered "
          f"{statistics.median(rates):,.0f} records/s median, logging to accepted")  # fmt: skip


if __name__ == "__main__":
    main()
