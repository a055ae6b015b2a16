"""Request helpers shared by the routes: JSON bodies, query parsing, per-version response cache."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Hashable
from typing import Any

import anyio
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..errors import ApiError, bad_request
from .responses import JSONResponse, ok_bytes, to_json

MAX_BODY_BYTES = 100 * 1024


async def json_body(request: Request) -> dict:
    """The JSON object body; no JSON content type means an empty body (as the Node runtime)."""
    if "application/json" not in request.headers.get("content-type", "").lower():
        return {}
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
    raw = b""
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise ApiError(413, "payload_too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
    except ClientDisconnect:  # gone mid-body (or closed by the body timeout): nothing to act on
        raise ApiError(400, "request_body_incomplete", "the connection closed before the body was complete") from None
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("invalid_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("invalid_json", "request body must be a JSON object")
    return body


def truthy(value: Any) -> bool:
    """Node's `String(v ?? 'false').toLowerCase() === 'true'`."""
    if value is True:
        return True
    return str(value if value is not None else "false").strip().lower() == "true"


def clamp_int(raw: Any, default: int, lo: int, hi: int) -> int:
    """Node's `Math.max(lo, Math.min(hi, Math.floor(Number(raw) || default)))`: never raises.

    Not a number (or NaN) gives the default; anything else, infinities and 1e400 included, is
    clamped into [lo, hi] before it becomes an int (`int(inf)` would raise OverflowError)."""
    if raw is None or isinstance(raw, bool) or (isinstance(raw, str) and raw.strip() == ""):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return default
    if math.isnan(value):
        return default
    return int(max(lo, min(hi, math.floor(value) if math.isfinite(value) else value)))


def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    return clamp_int(request.query_params.get(name), default, lo, hi)


def query_str(request: Request, name: str) -> str:
    return (request.query_params.get(name) or "").strip()


class ResponseCache:
    """Serialised responses keyed by request identity and the state version they were built from."""

    def __init__(self, max_entries: int = 2048):
        self._entries: dict[Hashable, tuple[Hashable, bytes]] = {}
        self._flights: dict[tuple[Hashable, Hashable], asyncio.Task[bytes]] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, version: Hashable, build: Callable[[], Any], *, envelope: bool = True) -> Response:
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            self.hits += 1
            return JSONResponse(entry[1])
        self.misses += 1
        data = to_json(build())
        body = ok_bytes(data) if envelope else data
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (version, body)
        return JSONResponse(body)

    async def get_async(self, key: Hashable, version: Hashable, build: Callable[[], bytes]) -> bytes:
        """The body (already encoded, envelope included) built by `build` in a worker thread at
        most once per (key, version): concurrent misses share one build, which a requester that
        goes away does not cancel."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            self.hits += 1
            return entry[1]
        flight = self._flights.get((key, version))
        if flight is None:
            self.misses += 1
            flight = self._flights[(key, version)] = asyncio.create_task(self._build(key, version, build))
            flight.add_done_callback(lambda task: self._landed(key, version, task))
        else:
            self.hits += 1
        return await asyncio.shield(flight)

    async def _build(self, key: Hashable, version: Hashable, build: Callable[[], bytes]) -> bytes:
        body = await anyio.to_thread.run_sync(build)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (version, body)
        return body

    def _landed(self, key: Hashable, version: Hashable, task: asyncio.Task[bytes]) -> None:
        self._flights.pop((key, version), None)
        if not task.cancelled():
            task.exception()  # retrieved here; every requester re-raises it through the shield
