"""One SSE connection seen from the server: a bounded queue of pre-serialised chunks.

Broadcasters `offer()` chunks without ever awaiting; a viewer whose queue is full is
disconnected instead of slowing the broadcaster or the other viewers. Read as an async
iterator, a viewer yields its opening chunks, then queued chunks, with `: keepalive`
comments in the quiet gaps and an `event: bye` once its maximum stream duration is up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

import orjson

from runtime_api.streaming.admission import Door
from runtime_api.streaming.sse import KEEPALIVE, format_event


def bye(reason: str) -> bytes:
    """The last event a server-ended stream sends; browsers reconnect on their own."""
    return format_event(None, "bye", orjson.dumps({"reason": reason, "reconnect": True}))


BYE = bye("max_stream_duration")
SLOW_BYE = bye("slow_viewer")

_END = object()


class TooManySubscribers(Exception):
    """The broadcaster already serves its maximum number of viewers (route: 429 too_many_subscribers)."""

    code = "too_many_subscribers"


class StreamClosed(Exception):
    """The broadcaster is shutting down and accepts no new viewers (route: 503)."""

    code = "stream_closed"


class Viewer:
    """A bounded, never-blocking outbox for one connection, read as an async iterator of bytes."""

    def __init__(self, *, queue_size: int, keepalive_ms: int, max_stream_ms: int,
                 opening: Iterable[bytes] = (), on_close: Callable[[Viewer], None] | None = None,
                 leave_door: Door | None = None):
        loop = asyncio.get_running_loop()
        self.leave_door = leave_door  # the broadcaster's: a mass disconnect is unwound a few per turn
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue(queue_size)
        self._opening: deque[bytes] = deque(opening)
        self._keepalive_s = keepalive_ms / 1000
        now = loop.time()
        self._next_keepalive = now + self._keepalive_s
        self._deadline = now + max_stream_ms / 1000
        self._on_close = on_close
        self._farewell: bytes | None = None
        self._started = False
        self._exhausted = False
        self.closed = False
        self.close_reason: str | None = None

    # ---- broadcaster side (never awaits) ----------------------------------------------------

    def offer(self, chunk: bytes) -> bool:
        """Queue a chunk; a full queue disconnects this viewer. Returns whether it was queued."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(chunk)
        except asyncio.QueueFull:
            self.end("slow_viewer", SLOW_BYE)
            return False
        return True

    def end(self, reason: str, farewell: bytes | None = None) -> None:
        """Stop this viewer: what it has not read yet is discarded, `farewell` is its last chunk."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._farewell = farewell
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_END)
        if self._on_close is not None:
            self._on_close(self)

    # ---- connection side ----------------------------------------------------------------------

    async def start(self) -> bytes | None:
        """Override to produce one chunk after the opening chunks (the room's initial packet)."""
        return None

    def __aiter__(self) -> Viewer:
        return self

    async def __anext__(self) -> bytes:
        if self._exhausted:
            raise StopAsyncIteration
        if self._opening:
            return self._opening.popleft()
        if not self._started:
            self._started = True
            first = None if self.closed else await self.start()
            if first is not None:
                return first
        while True:
            now = self._loop.time()
            if now >= self._deadline and not self.closed:
                self.end("max_stream_duration")
                self._exhausted = True
                return BYE
            wake = min(self._next_keepalive, self._deadline)
            try:
                async with asyncio.timeout(max(0.0, wake - now)):
                    item = await self._queue.get()
            except TimeoutError:
                now = self._loop.time()
                if now >= self._next_keepalive:
                    self._next_keepalive = now + self._keepalive_s
                    return KEEPALIVE
                continue
            if item is _END:
                self._exhausted = True
                if self._farewell is not None:
                    return self._farewell
                raise StopAsyncIteration
            return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        """The connection is gone: unsubscribe now."""
        self._exhausted = True
        self.end("disconnected")
