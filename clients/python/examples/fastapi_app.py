"""A FastAPI model server that sends every request's features to driftd.

    pip install fastapi uvicorn driftd-client
    DRIFTD_URL=http://127.0.0.1:8471 uvicorn fastapi_app:app --workers 4

`log()` never blocks, so it is called straight from the async handler; flushing and closing
wait, so they go through the executor (`aflush`, `aclose`) and never stall the event loop.
"""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from typing import Any, Dict, Optional

from fastapi import FastAPI, Header

from driftd_client import DriftdClient

MODEL_VERSION = "2026-11-03"

driftd = DriftdClient(
    os.environ.get("DRIFTD_URL", "http://127.0.0.1:8471"),
    "search_ranking_inputs",
    labels={"model_version": MODEL_VERSION},
)


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    # On shutdown: send what is queued, for at most 5 s, without blocking the loop.
    await driftd.aclose(timeout=5)


app = FastAPI(lifespan=lifespan)


def predict(features: Dict[str, Any]) -> float:
    """Stands in for the model."""
    return min(1.0, 0.1 * float(features.get("query_len", 0)))


@app.post("/predict")
async def predict_route(
    features: Dict[str, Any], x_request_id: Optional[str] = Header(default=None)
) -> Dict[str, Any]:
    request_id = x_request_id or uuid.uuid4().hex
    score = predict(features)
    driftd.log(features, id=request_id)  # a few microseconds; never raises
    return {"id": request_id, "score": score}


@app.get("/driftd")
async def driftd_counts() -> Dict[str, int]:
    """The client's counts, for the server's own metrics (sent, dropped, rejected, queued)."""
    return driftd.stats()
