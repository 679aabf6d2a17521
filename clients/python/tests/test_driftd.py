"""Against a real `driftd serve` (DRIFTD_BIN; test.sh sets it): everything logged arrives,
refusals are counted, and a restart of driftd loses only what the queue bound implies."""

from __future__ import annotations

import threading

from conftest import wait_for

from driftd_client import DriftdClient

DATASET = "search_ranking_inputs"


def online_records(driftd) -> float:
    return driftd.metric("driftd_records_total", dataset=DATASET, stage="online")


def test_everything_logged_from_many_threads_arrives(driftd):
    # Room for all of it: logging outruns any sender, and this test is about delivery.
    client = DriftdClient(driftd.url, DATASET, labels={"model_version": "v3"},
                          max_queue=20_000, batch_size=500)  # fmt: skip

    def serve(worker: int) -> None:
        for i in range(5_000):
            client.log({"query_len": i % 17, "country": ["US", "DE", "FR"][i % 3],
                        "score": i / 5_000, "is_mobile": i % 2 == 0}, id=f"{worker}-{i}")  # fmt: skip

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(timeout=30) is True
    assert client.stats() == {
        "logged": 20_000, "sent": 20_000, "dropped": 0, "rejected": 0, "queued": 0,
        "in_flight": 0,
    }  # fmt: skip
    assert online_records(driftd) == 20_000
    assert driftd.metric("driftd_records_rejected_total", dataset=DATASET) == 0
    # A driftd without compressed bodies answers the first gzip body 415, once; the client
    # then sends uncompressed. One that takes gzip never answers 415.
    refused = driftd.metric("driftd_ingest_dropped_total", reason="unsupported_media_type")
    assert refused == (0 if client._gzip else 1)
    client.close()


def test_a_400_counts_the_batch_as_rejected(driftd):
    client = DriftdClient(driftd.url, "not a dataset name")  # driftd answers 400
    for i in range(25):
        client.log({"a": i}, id=i)
    assert client.flush(timeout=10) is False
    stats = client.stats()
    assert stats["rejected"] == 25 and stats["sent"] == 0 and stats["dropped"] == 0
    # Refused once, not retried (a 415 for gzip first, when driftd does not take it).
    assert driftd.metric("driftd_ingest_dropped_total", reason="invalid_request") == 1
    client.close()


def test_a_restart_of_driftd_loses_only_what_the_queue_bound_implies(driftd):
    client = DriftdClient(driftd.url, DATASET, max_queue=2_000, batch_size=200,
                          flush_interval=0.2, max_backoff=0.5)  # fmt: skip
    for i in range(1_500):
        client.log({"query_len": i % 9}, id=i)
    assert client.flush(timeout=30) is True
    before = online_records(driftd)
    assert before == 1_500

    driftd.stop()
    for i in range(1_500, 2_500):
        client.log({"query_len": i % 9}, id=i)
    # The sender takes a batch and keeps retrying it while driftd is down.
    assert wait_for(lambda: client.stats()["in_flight"] > 0, timeout=10)
    for i in range(2_500, 10_000):
        client.log({"query_len": i % 9}, id=i)
    down = client.stats()
    assert down["queued"] == 2_000 and 0 < down["in_flight"] <= 200
    assert down["dropped"] == 8_500 - 2_000 - down["in_flight"]

    driftd.start()  # the same port and database
    assert client.flush(timeout=30) is False  # records were dropped while driftd was down
    after = online_records(driftd)
    assert after == 2_000 + down["in_flight"]
    final = client.stats()
    assert final["sent"] == before + after
    assert final["sent"] + final["dropped"] == final["logged"] == 10_000
    assert final["rejected"] == 0
    client.close()
