"""A plain WSGI model server that sends every request's features to driftd.

    DRIFTD_URL=http://127.0.0.1:8471 gunicorn --workers 4 --preload wsgi_app:app
    python wsgi_app.py                  # or the standard library's server, on port 8000

The client is created at import (in gunicorn's master with --preload): it starts no thread
until the first record, and each forked worker gets its own queue and sender.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Callable, Dict, Iterable, List, Tuple

from driftd_client import DriftdClient

MODEL_VERSION = "2026-11-03"

driftd = DriftdClient(
    os.environ.get("DRIFTD_URL", "http://127.0.0.1:8471"),
    "search_ranking_inputs",
    labels={"model_version": MODEL_VERSION},
)


def predict(features: Dict[str, Any]) -> float:
    """Stands in for the model."""
    return min(1.0, 0.1 * float(features.get("query_len", 0)))


def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] != "POST" or environ["PATH_INFO"] != "/predict":
        return respond(start_response, "404 Not Found", {"error": "POST /predict"})
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        features = json.loads(environ["wsgi.input"].read(size))
        if not isinstance(features, dict):
            raise ValueError("the body must be a JSON object of features")
    except ValueError as e:
        return respond(start_response, "400 Bad Request", {"error": str(e)})
    request_id = environ.get("HTTP_X_REQUEST_ID") or uuid.uuid4().hex
    score = predict(features)
    # One line, a few microseconds, never raises: driftd being slow or gone costs nothing here.
    driftd.log(features, id=request_id)
    return respond(start_response, "200 OK", {"id": request_id, "score": score})


def respond(start_response: Callable[..., Any], status: str, document: Dict[str, Any]) -> List[bytes]:
    body = json.dumps(document).encode()
    headers: List[Tuple[str, str]] = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    start_response(status, headers)
    return [body]


# Counts for the server's own metrics endpoint, e.g. a /metrics route or a StatsD gauge:
#   driftd.stats() -> {"logged": …, "sent": …, "dropped": …, "rejected": …, "queued": …, "in_flight": …}

if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    with make_server("127.0.0.1", 8000, app) as server:
        print("serving on http://127.0.0.1:8000/predict")
        try:
            server.serve_forever()
        finally:
            driftd.close(timeout=5)
