"""How records become request bodies, and how one body is posted to driftd.

Pure helpers plus a small keep-alive HTTP connection; the retry policy lives with the sender in
`_client.py`. Nothing here logs: callers decide what is worth a warning, and record contents
never are.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import gzip
import http.client
import json
import math
import ssl
import uuid
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, urlsplit

# Answers are small JSON documents; a larger one is not driftd's and is not read further.
MAX_ANSWER_BYTES = 1 << 20


class Unencodable(Exception):
    """A record that has no JSON form (a value of a type JSON cannot carry)."""


def _jsonable(value: Any) -> Any:
    """JSON forms for values model servers commonly hold: NumPy scalars and arrays (without
    importing NumPy), dates and times, decimals, enums, UUIDs, sets, bytes."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"a value of type {type(value).__name__} has no JSON form")


_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_jsonable
)


def _finite(value: Any) -> Any:
    """`value` with non-finite floats (NaN, ±Infinity) replaced by None: JSON has no form for
    them, and one such value must not cost the record (or, in a JSON document, the batch)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as compact JSON (UTF-8). Raises `Unencodable` naming the problem, never the
    value."""
    try:
        return _ENCODER.encode(record).encode("utf-8")
    except ValueError:
        # Non-finite floats (allow_nan=False), possibly inside NumPy values: convert those
        # first, then replace, then try once more.
        try:
            return _ENCODER.encode(_finite(_plain(record))).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as again:
            raise Unencodable(_reason(again)) from None
    except (TypeError, RecursionError) as e:
        raise Unencodable(_reason(e)) from None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return _plain(_jsonable(value))


def _reason(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "the record is nested too deeply (or refers to itself)"
    # json's messages name types and keys ("keys must be str, int, ..."), never values.
    return str(e).split("\n")[0][:200]


def label_key(labels: Optional[Mapping[str, str]]) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted(labels.items())) if labels else ()


# Records are encoded a few dozen at a time: one C-level call per piece halves the cost of
# encoding record by record, and a piece is small enough that the sender never holds the GIL
# for long (the C encoder does not release it) while the model server's threads wait.
PIECE_RECORDS = 64


@dataclass
class Piece:
    """Records encoded as JSON objects separated by commas (no brackets), and the records, to
    encode them one by one again if driftd finds the body too large."""

    data: bytes
    records: Sequence[Mapping[str, Any]]


def encode_pieces(
    records: Sequence[Mapping[str, Any]], per_piece: int = PIECE_RECORDS
) -> Tuple[List[Piece], List[str]]:
    """The records as pieces, and why each record with no JSON form was left out."""
    pieces: List[Piece] = []
    problems: List[str] = []
    for start in range(0, len(records), per_piece):
        chunk = records[start : start + per_piece]
        try:
            pieces.append(Piece(_ENCODER.encode(chunk)[1:-1].encode("utf-8"), chunk))
            continue
        except (TypeError, ValueError, RecursionError):
            pass
        for record in chunk:  # one of them is awkward: find which, keep the others
            try:
                pieces.append(Piece(encode_record(record), [record]))
            except Unencodable as e:
                problems.append(str(e))
    return pieces, problems


def single(pieces: List[Piece]) -> List[Piece]:
    """The same records, one per piece."""
    out: List[Piece] = []
    for piece in pieces:
        if len(piece.records) == 1:
            out.append(piece)
        else:
            out.extend(Piece(encode_record(r), [r]) for r in piece.records)
    return out


def split_by_bytes(pieces: List[Piece], max_bytes: int) -> List[List[Piece]]:
    """Consecutive runs of `pieces` of at most `max_bytes` together (one record at least): a
    piece too large alone is taken apart into its records first."""
    bodies: List[List[Piece]] = []
    current: List[Piece] = []
    size = 0
    for piece in pieces:
        parts = [piece] if len(piece.data) < max_bytes else single([piece])
        for part in parts:
            if current and size + len(part.data) + 1 > max_bytes:
                bodies.append(current)
                current, size = [], 0
            current.append(part)
            size += len(part.data) + 1
    if current:
        bodies.append(current)
    return bodies


def body(pieces: List[Piece], labels: Tuple[Tuple[str, str], ...]) -> bytes:
    """The request body, driftd's JSON document: `{"labels": {…}, "records": […]}`."""
    head = b"{"
    if labels:
        head = _ENCODER.encode({"labels": dict(labels)}).encode("utf-8")[:-1] + b","
    return head + b'"records":[' + b",".join(p.data for p in pieces) + b"]}"


def retry_after(value: Optional[str], now: Optional[_dt.datetime] = None) -> Optional[float]:
    """Seconds asked by a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


@dataclass
class Answer:
    status: int
    retry_after: Optional[float]
    document: Optional[Dict[str, Any]]

    @property
    def message(self) -> str:
        """driftd's `{"error": "…"}`, shortened; empty when there is none."""
        if isinstance(self.document, dict) and isinstance(self.document.get("error"), str):
            return self.document["error"][:300]
        return ""


class Endpoint:
    """`POST {url}/v1/datasets/{dataset}/records?stage=…` over one keep-alive connection,
    reopened when it breaks. Not thread-safe: the client's sender thread is its only user."""

    def __init__(self, url: str, dataset: str, stage: str, token: Optional[str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http://host[:port] or https://host[:port], got {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        prefix = parts.path.rstrip("/")
        self.path = f"{prefix}/v1/datasets/{quote(dataset, safe='')}/records?stage={stage}"
        # For log lines: no user info, no token.
        self.where = f"{parts.scheme}://{self.host}:{self.port}"
        self._token = token
        self._conn: Optional[http.client.HTTPConnection] = None
        self._used = False

    def post(
        self, payload: bytes, gzipped: bool, timeout: float
    ) -> Answer:
        """Posts once (once more on a fresh connection if a reused one turns out closed).
        Raises OSError / http.client.HTTPException when driftd cannot be reached."""
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(payload)),
            "User-Agent": "driftd-client",
            "Accept": "application/json",
        }
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        for attempt in (0, 1):
            conn = self._connection(timeout)
            reused = self._used
            try:
                conn.request("POST", self.path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read(MAX_ANSWER_BYTES + 1)
            except (OSError, http.client.HTTPException):
                self.close()
                # A keep-alive connection the server has closed fails before any answer:
                # that says nothing about driftd, so try once on a new connection.
                if reused and attempt == 0:
                    continue
                raise
            self._used = True
            if response.will_close or len(raw) > MAX_ANSWER_BYTES:
                self.close()
            document = None
            try:
                parsed = json.loads(raw) if raw else None
                document = parsed if isinstance(parsed, dict) else None
            except ValueError:
                pass
            return Answer(response.status, retry_after(response.getheader("Retry-After")), document)
        raise AssertionError("unreachable")

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self._used = False
        else:
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        self._conn = None
        self._used = False


def compress(payload: bytes) -> bytes:
    # Level 1: most of gzip's gain on JSON at a fraction of its CPU, on the model server's host.
    return gzip.compress(payload, compresslevel=1, mtime=0)


__all__ = [
    "Answer",
    "Endpoint",
    "Unencodable",
    "Piece",
    "body",
    "compress",
    "encode_pieces",
    "encode_record",
    "label_key",
    "retry_after",
    "single",
    "split_by_bytes",
]
