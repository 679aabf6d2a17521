"""The examples serve requests and their features reach a real driftd."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str, monkeypatch, url: str):
    monkeypatch.setenv("DRIFTD_URL", url)
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_wsgi_example(driftd, monkeypatch):
    example = load("wsgi_app", monkeypatch, driftd.url)
    with make_server("127.0.0.1", 0, example.app, handler_class=Quiet) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            for i in range(30):
                request = urllib.request.Request(
                    base + "/predict", data=json.dumps({"query_len": i % 5, "country": "US"}).encode(),
                    headers={"Content-Type": "application/json", "X-Request-Id": f"r{i}"},
                )  # fmt: skip
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert json.loads(response.read())["id"] == f"r{i}"
        finally:
            server.shutdown()
    assert example.driftd.close(timeout=10) is True
    assert example.driftd.stats()["sent"] == 30
    assert driftd.metric("driftd_records_total", dataset="search_ranking_inputs", stage="online") == 30


def test_fastapi_example(driftd, monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    example = load("fastapi_app", monkeypatch, driftd.url)
    with TestClient(example.app) as http:  # runs the lifespan: aclose() on exit
        for i in range(40):
            answer = http.post("/predict", json={"query_len": i % 5, "country": "DE"},
                               headers={"X-Request-Id": f"f{i}"})  # fmt: skip
            assert answer.status_code == 200 and answer.json()["id"] == f"f{i}"
        assert http.get("/driftd").json()["logged"] == 40
    assert example.driftd.stats()["sent"] == 40
    assert driftd.metric("driftd_records_total", dataset="search_ranking_inputs", stage="online") == 40
