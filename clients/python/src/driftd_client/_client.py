"""`DriftdClient`: a bounded in-memory queue in front of one background sender thread.

The caller's side (`log`) copies the record, appends it to a `deque` under a lock and returns;
it never waits for the network, never raises, and never holds more than `max_queue` records:
when the queue is full the oldest record is dropped and counted. The sender thread takes
batches off the queue, encodes, compresses and posts them, and owns every retry.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

from . import _wire

logger = logging.getLogger("driftd_client")

# Statuses after which the same body may succeed later.
_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
_WARN_EVERY = 60.0

# (sequence number, record, labels of this record or None)
_Item = Tuple[int, Dict[str, Any], Optional[Dict[str, str]]]

_live: "weakref.WeakSet[DriftdClient]" = weakref.WeakSet()


class DriftdClient:
    """Sends records to driftd's `POST /v1/datasets/{dataset}/records` from a background thread.

    Create one per process and dataset (at import time is fine: no thread starts before the
    first `log`). Thread-safe, fork-safe, and safe to call from asyncio code.
    """

    def __init__(
        self,
        url: str,
        dataset: str,
        token: Optional[str] = None,
        *,
        labels: Optional[Mapping[str, Any]] = None,
        stage: str = "online",
        max_queue: int = 10_000,
        batch_size: int = 500,
        batch_bytes: int = 1_000_000,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        compression: Optional[str] = "gzip",
        max_backoff: float = 10.0,
        exit_timeout: float = 2.0,
        id_field: str = "_id",
    ) -> None:
        if stage != "online":
            # Offline records need a run id; pipelines use `driftd push` for whole files.
            raise ValueError(f"stage must be 'online', got {stage!r}")
        if compression not in (None, "gzip"):
            raise ValueError(f"compression must be 'gzip' or None, got {compression!r}")
        for name, value in (("max_queue", max_queue), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if batch_bytes < 1024:
            raise ValueError(f"batch_bytes must be at least 1024, got {batch_bytes!r}")
        for name, seconds in (
            ("flush_interval", flush_interval),
            ("timeout", timeout),
            ("max_backoff", max_backoff),
            ("exit_timeout", exit_timeout),
        ):
            if not seconds > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {seconds!r}")
        if not isinstance(dataset, str) or not dataset:
            raise ValueError("dataset must be a non-empty string")
        token = token or os.environ.get("DRIFTD_TOKEN") or None
        self._endpoint = _wire.Endpoint(url, dataset, stage, token)
        self.dataset = dataset
        self._labels = {str(k): str(v) for k, v in (labels or {}).items()}
        self._label_key = _wire.label_key(self._labels)
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        self._flush_interval = float(flush_interval)
        self._timeout = float(timeout)
        self._gzip = compression == "gzip"
        self._max_backoff = float(max_backoff)
        self._exit_timeout = float(exit_timeout)
        self._id_field = id_field
        self._warned: Dict[str, Tuple[float, int]] = {}
        self._fresh_state()
        _live.add(self)

    def _fresh_state(self) -> None:
        """Everything a process owns alone: after a fork the child starts from here."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queue: Deque[_Item] = deque(maxlen=self._max_queue)
        self._thread: Optional[threading.Thread] = None
        self._seq = 0
        self._inflight_first: Optional[int] = None
        self._inflight = 0
        self._urgent = 0
        self._closed = False
        self._close_deadline: Optional[float] = None
        self._logged = 0
        self._sent = 0
        self._dropped = 0
        self._rejected = 0
        self._losses_seen = 0
        self._endpoint.close()

    def __repr__(self) -> str:
        return f"DriftdClient({self._endpoint.where!r}, {self.dataset!r})"

    # -- the caller's side ---------------------------------------------------------------

    def log(
        self,
        record: Mapping[str, Any],
        id: Any = None,
        labels: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Queues one record (a mapping of feature name to value) and returns at once.

        `id` is stored in the record as `_id` (driftd's record id, for sampling and joins);
        `labels` (string values) are added to the client's labels for this record's batch.
        Never blocks and never raises: when the queue is full the oldest record is dropped.
        """
        try:
            item = dict(record)
            if id is not None:
                item[self._id_field] = id
            extra = {str(k): str(v) for k, v in labels.items()} if labels else None
        except Exception:  # noqa: BLE001 — log() never raises into a request path
            with self._lock:
                self._logged += 1
                self._rejected += 1
            self._warn("unusable", "Record refused: log() takes a mapping of feature names to "
                       "values and labels as a mapping, got a record of type %s",
                       type(record).__name__)
            return
        with self._lock:
            self._logged += 1
            if self._closed:
                self._dropped += 1
                return
            if self._thread is None:
                self._start()
            queue = self._queue
            if len(queue) >= self._max_queue:
                self._dropped += 1  # the deque's maxlen drops its oldest record on append
            self._seq += 1
            queue.append((self._seq, item, extra))
            if len(queue) >= self._batch_size and not self._wake.is_set():
                self._wake.set()

    @property
    def sent(self) -> int:
        """Records driftd accepted."""
        return self._sent

    @property
    def dropped(self) -> int:
        """Records lost before driftd answered for them: the queue was full (driftd slow or
        gone), the client was closed, or the exit bound passed while they waited."""
        return self._dropped

    @property
    def rejected(self) -> int:
        """Records driftd refused (400 and other final answers, or a record that driftd found
        unreadable), and records with no JSON form. Never retried."""
        return self._rejected

    @property
    def queued(self) -> int:
        """Records waiting to be sent (not counting a batch being sent)."""
        return len(self._queue)

    def stats(self) -> Dict[str, int]:
        """All counts at once, for a model server's own metrics: `logged` (calls to `log`),
        `sent`, `dropped`, `rejected`, `queued` and `in_flight` (the batch being sent). Every
        logged record is in exactly one of the last five."""
        with self._lock:
            return {
                "logged": self._logged,
                "sent": self._sent,
                "dropped": self._dropped,
                "rejected": self._rejected,
                "queued": len(self._queue),
                "in_flight": self._inflight,
            }

    def flush(self, timeout: float = 5.0) -> bool:
        """Sends what is queued now without waiting for a full batch, and waits up to `timeout`
        seconds for it. True when every record logged before the call has been accepted by
        driftd and none was dropped or rejected since the previous `flush` (or the start)."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            target = self._seq
            if self._thread is None and self._queue:
                self._start()
            self._urgent += 1
            self._wake.set()
            try:
                while not self._done_up_to(target):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._thread is None:
                        break
                    self._changed.wait(min(remaining, 0.1))
                done = self._done_up_to(target)
            finally:
                self._urgent -= 1
            losses = self._dropped + self._rejected
            clean = losses == self._losses_seen
            self._losses_seen = losses
            return done and clean

    def close(self, timeout: float = 5.0) -> bool:
        """Stops taking records, sends what is queued for up to `timeout` seconds, then stops
        the sender; what is still unsent then is dropped (and counted). Returns what the
        implied flush would have. Idempotent."""
        with self._lock:
            first = not self._closed
            self._closed = True
            if self._close_deadline is None or first:
                self._close_deadline = time.monotonic() + max(0.0, timeout)
            thread = self._thread
        ok = self.flush(timeout) if thread is not None else self._clean_losses()
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            # A request under way is bounded by the exit deadline too (`_request_timeout`).
            thread.join(max(0.0, self._close_deadline - time.monotonic()) + 0.5)
        with self._lock:
            self._drop_all_queued()
        self._endpoint_close_if_idle(thread)
        _live.discard(self)
        return ok

    async def aflush(self, timeout: float = 5.0) -> bool:
        """`flush` for asyncio code: waits in the default executor, not on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout)

    async def aclose(self, timeout: float = 5.0) -> bool:
        """`close` for asyncio code (e.g. in a FastAPI lifespan's shutdown)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.close, timeout)

    def __enter__(self) -> "DriftdClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bookkeeping (under the lock) ----------------------------------------------------

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="driftd-client", daemon=True)
        self._thread = thread
        thread.start()

    def _done_up_to(self, seq: int) -> bool:
        # The sender takes records in order, so an older record is either in flight or at
        # the head of the queue.
        if self._inflight_first is not None and self._inflight_first <= seq:
            return False
        return not self._queue or self._queue[0][0] > seq

    def _clean_losses(self) -> bool:
        with self._lock:
            losses = self._dropped + self._rejected
            clean = losses == self._losses_seen and not self._queue
            self._losses_seen = losses
            return clean

    def _drop_all_queued(self) -> None:
        self._dropped += len(self._queue)
        self._queue.clear()
        self._changed.notify_all()

    def _endpoint_close_if_idle(self, thread: Optional[threading.Thread]) -> None:
        if thread is None or not thread.is_alive():
            self._endpoint.close()

    def _warn(self, key: str, message: str, *args: Any) -> None:
        """A warning at most once a minute per kind, with how many were held back."""
        now = time.monotonic()
        last, held = self._warned.get(key, (-_WARN_EVERY, 0))
        if now - last < _WARN_EVERY:
            self._warned[key] = (last, held + 1)
            return
        self._warned[key] = (now, 0)
        if held:
            message += " (%d similar warnings held back)"
            args = (*args, held)
        logger.warning(message, *args)

    # -- the sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        next_partial = time.monotonic() + self._flush_interval
        while True:
            batch: List[_Item] = []
            with self._lock:
                if self._stop.is_set():
                    return
                waiting = len(self._queue)
                urgent = self._urgent > 0 or self._closed
                now = time.monotonic()
                due = waiting > 0 and (
                    waiting >= self._batch_size or urgent or now >= next_partial
                )
                if due:
                    batch = [self._queue.popleft() for _ in range(min(waiting, self._batch_size))]
                    self._inflight_first = batch[0][0]
                    self._inflight = len(batch)
                elif self._closed and waiting == 0:
                    return
                else:
                    self._wake.clear()
            if not due:
                if not waiting:
                    # The next record waits at most one interval for a partial batch.
                    next_partial = now + self._flush_interval
                self._wake.wait(max(0.01, next_partial - now))
                continue
            try:
                self._send(batch)
            except Exception as e:  # noqa: BLE001 — the sender must outlive any bug in one batch
                # The type only: a message or traceback could quote a record's values.
                logger.error("Batch lost to an unexpected error (%s)", type(e).__name__)
                with self._lock:
                    self._dropped += self._inflight
            finally:
                with self._lock:
                    self._inflight_first = None
                    self._inflight = 0
                    self._changed.notify_all()
            if len(self._queue) < self._batch_size:
                next_partial = time.monotonic() + self._flush_interval

    def _send(self, batch: List[_Item]) -> None:
        groups: Dict[Tuple[Tuple[str, str], ...], List[Dict[str, Any]]] = {}
        for _seq, record, extra in batch:
            key = _wire.label_key({**self._labels, **extra}) if extra else self._label_key
            groups.setdefault(key, []).append(record)
        for labels, records in groups.items():
            pieces, problems = _wire.encode_pieces(records)
            if problems:
                self._resolve(rejected=len(problems))
                self._warn("unencodable", "%d records refused: %s", len(problems), problems[0])
            for pieces_of_body in _wire.split_by_bytes(pieces, self._batch_bytes):
                self._deliver(pieces_of_body, labels)

    def _deliver(self, pieces: List[_wire.Piece], labels: Tuple[Tuple[str, str], ...]) -> None:
        """Posts one body until driftd answers for it for good, or the exit bound passes."""
        payload = _wire.body(pieces, labels)
        records = sum(len(p.records) for p in pieces)
        failures = 0
        while True:
            gzipped = self._gzip and len(payload) >= 512
            wire = _wire.compress(payload) if gzipped else payload
            error = None
            try:
                answer = self._endpoint.post(wire, gzipped, self._request_timeout())
            except Exception as e:  # noqa: BLE001 — OSError, HTTPException, ssl errors…
                answer, error = None, e
            if answer is not None and 200 <= answer.status < 300:
                self._count_accepted(answer, records)
                return
            if answer is not None and answer.status == 415 and gzipped:
                self._gzip = False
                logger.warning(
                    "driftd at %s refused a gzip-compressed body (415): sending uncompressed "
                    "bodies from now on", self._endpoint.where)
                continue
            if answer is not None and answer.status == 413:
                self._too_large(pieces, labels, len(payload))
                return
            if answer is not None and answer.status not in _RETRYABLE:
                self._resolve(rejected=records)
                self._warn(f"status-{answer.status}", "driftd at %s refused %d records (%d): %s",
                           self._endpoint.where, records, answer.status, answer.message)
                return
            asked = answer.retry_after if answer is not None else None
            wait = self._backoff(failures, asked)
            failures += 1
            if answer is not None:
                self._warn("busy", "driftd at %s answered %d; retrying in %.1f s",
                           self._endpoint.where, answer.status, wait)
            else:
                self._warn("unreachable", "driftd at %s unreachable (%s); retrying in %.1f s",
                           self._endpoint.where, type(error).__name__, wait)
            if not self._pause(wait):
                self._resolve(dropped=records)
                return

    def _count_accepted(self, answer: _wire.Answer, records: int) -> None:
        doc = answer.document or {}
        accepted, refused = doc.get("accepted"), doc.get("rejected")
        if not isinstance(accepted, int) or not isinstance(refused, int):
            accepted, refused = records, 0
        # Records neither accepted nor refused (none, with today's driftd) are not lost
        # silently: they count as rejected.
        self._resolve(sent=accepted, rejected=max(refused, records - accepted))
        if refused:
            self._warn("record-refused", "driftd at %s refused %d of %d records in a batch",
                       self._endpoint.where, refused, records)

    def _too_large(
        self, pieces: List[_wire.Piece], labels: Tuple[Tuple[str, str], ...], size: int
    ) -> None:
        """413: driftd's `max_body_bytes` is below `batch_bytes`. Halve both the body and the
        client's byte bound, down to single records; a record alone too large is refused."""
        self._batch_bytes = max(1024, min(self._batch_bytes, size) // 2)
        if len(pieces) == 1 and len(pieces[0].records) == 1:
            self._resolve(rejected=1)
            self._warn("too-large", "driftd at %s refused a record of %d bytes as too large",
                       self._endpoint.where, size)
            return
        if len(pieces) == 1:
            pieces = _wire.single(pieces)
        half = len(pieces) // 2
        self._deliver(pieces[:half], labels)
        self._deliver(pieces[half:], labels)

    def _resolve(self, sent: int = 0, rejected: int = 0, dropped: int = 0) -> None:
        """Records of the batch in flight that driftd has answered for, or that are lost."""
        with self._lock:
            self._sent += sent
            self._rejected += rejected
            self._dropped += dropped
            self._inflight = max(0, self._inflight - sent - rejected - dropped)

    def _backoff(self, failures: int, asked: Optional[float]) -> float:
        """Exponential with jitter from 0.5 s, never less than driftd's `Retry-After`, never
        more than `max_backoff`."""
        exponential = min(self._max_backoff, 0.5 * (2 ** min(failures, 16)))
        wait = exponential * random.uniform(0.5, 1.0)
        if asked is not None:
            wait = max(wait, asked)
        return min(wait, self._max_backoff)

    def _request_timeout(self) -> float:
        deadline = self._close_deadline
        if deadline is None:
            return self._timeout
        return max(0.05, min(self._timeout, deadline - time.monotonic()))

    def _pause(self, seconds: float) -> bool:
        """Sleeps before a retry; False when closing and the exit bound would pass first."""
        deadline = self._close_deadline
        if deadline is not None and time.monotonic() + seconds > deadline:
            return False
        return not self._stop.wait(seconds)


def _after_fork_in_child() -> None:
    # The child inherits the parent's queue and counts but not its thread: it starts empty,
    # counts from zero and starts its own sender on its first record.
    for client in list(_live):
        client._fresh_state()


def _close_all_at_exit() -> None:
    clients = list(_live)
    if not clients:
        return
    deadline = time.monotonic() + max(c._exit_timeout for c in clients)
    for client in clients:
        remaining = min(client._exit_timeout, deadline - time.monotonic())
        client.close(max(0.0, remaining))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
