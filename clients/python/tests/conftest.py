"""Fixtures: a local HTTP stand-in for driftd that answers from a script and keeps what it got,
and a real `driftd serve` (the binary in DRIFTD_BIN) on a temporary SQLite database."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple
import urllib.request

import pytest

DRIFTD_BIN = os.environ.get("DRIFTD_BIN")


@dataclass
class Request:
    headers: Dict[str, str]
    raw: bytes
    records: List[dict]
    labels: Dict[str, str]
    status: int
    at: float
    wire_size: int = 0


# (status, headers, JSON document) or None for driftd's usual 202.
Answer = Optional[Tuple[int, Dict[str, str], dict]]


@dataclass
class StandIn:
    """What driftd would answer, scripted: `respond(request)` may return an answer; otherwise
    202 with every record accepted."""

    url: str = ""
    requests: List[Request] = field(default_factory=list)
    respond: Optional[Callable[[Request], Answer]] = None
    refuse_gzip: bool = False
    max_body_bytes: Optional[int] = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> List[dict]:
        with self.lock:
            return [r for q in self.requests if q.status == 202 for r in q.records]

    def statuses(self) -> List[int]:
        with self.lock:
            return [q.status for q in self.requests]


def _parse(raw: bytes, content_type: str) -> Tuple[List[dict], Dict[str, str]]:
    if content_type.startswith("application/json"):
        doc = json.loads(raw)
        return doc["records"], doc.get("labels", {})
    return [json.loads(line) for line in raw.split(b"\n") if line.strip()], {}


def _handler(stand_in: StandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            wire_size = len(raw)
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer: Answer = None
            if stand_in.max_body_bytes is not None and len(raw) > stand_in.max_body_bytes:
                answer = (413, {}, {"error": "request body too large"})
            elif headers.get("content-encoding") == "gzip":
                if stand_in.refuse_gzip:
                    answer = (415, {}, {"error": 'Content-Encoding "gzip" is not supported'})
                else:
                    raw = gzip.decompress(raw)
            records, labels = ([], {}) if answer else _parse(raw, headers["content-type"])
            request = Request(headers, raw, records, labels, 0, time.monotonic(), wire_size)
            if answer is None and stand_in.respond is not None:
                answer = stand_in.respond(request)
            if answer is None:
                answer = (202, {}, {"accepted": len(records), "rejected": 0})
            status, extra, doc = answer
            request.status = status
            with stand_in.lock:
                stand_in.requests.append(request)
            payload = json.dumps(doc).encode()
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def stand_in():
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class Driftd:
    """`driftd serve` on 127.0.0.1 with a SQLite database in `home`; stopped by the fixture."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.process: Optional[subprocess.Popen] = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = self.home / f"driftd-{self.starts}.log"
        # Only the settings this test gives: none of the caller's DRIFTD_* variables.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTD_")}
        env["DRIFTD_LOG"] = "info"
        env["DRIFTD_LOG_FORMAT"] = "json"
        with open(log, "w") as err:
            self.process = subprocess.Popen(
                [DRIFTD_BIN, "serve", "--listen", f"127.0.0.1:{self.port}",
                 "--database", f"sqlite://{self.home / 'driftd.db'}"],
                cwd=self.home, stdout=subprocess.DEVNULL, stderr=err, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"driftd serve did not start ({self.process.poll()}):\n"
                            f"{log.read_text()}")
            match = re.search(r'"listen":"127\.0\.0\.1:(\d+)"', log.read_text())
            if match:
                self.port = int(match.group(1))
                return
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.process = None
        assert status == 0, f"driftd serve exited with {status}"

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.read().decode()

    def metric(self, family: str, **labels: str) -> float:
        """The value of the one sample of `family` with `labels` (0 when there is none)."""
        found = 0.0
        for line in self.get("/metrics").splitlines():
            match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
            if not match or match.group(1) != family:
                continue
            have = dict(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                found += float(match.group(3))
        return found


@pytest.fixture
def driftd(tmp_path):
    if not DRIFTD_BIN:
        pytest.skip("DRIFTD_BIN is not set (test.sh sets it)")
    server = Driftd(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
