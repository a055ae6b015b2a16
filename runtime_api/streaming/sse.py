"""Server-sent events on the wire: event framing and a response that notices a vanished client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

CONNECTED = b": connected\n\n"
KEEPALIVE = b": keepalive\n\n"

SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}

# A client that has not drained its socket for this long is gone for practical purposes.
DEFAULT_SEND_TIMEOUT_S = 20.0


def format_event(event_id: int | None, event: str, data: bytes) -> bytes:
    """One SSE event; `data` is already-serialised JSON (one `data:` line per line it holds)."""
    head = b"event: " + event.encode() + b"\n"
    if event_id is not None:
        head = b"id: %d\n" % event_id + head
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        body = b"".join(b"data: " + line + b"\n" for line in lines)
    else:
        body = b"data: " + data + b"\n"
    return head + body + b"\n"


def parse_last_event_id(value: str | None) -> int | None:
    """The `Last-Event-ID` header as a non-negative int, or None when absent or not a number."""
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)


class SSEResponse:
    """An ASGI response streaming ready-made SSE chunks, watching for the client going away.

    Starlette's StreamingResponse learns of a disconnect only at its next write on ASGI >= 2.4,
    and an idle SSE stream may not write for a whole keepalive period. Here one watcher task
    reads `receive` and cancels the stream the moment the client disconnects; a send blocked on
    a client that stopped reading gives up after `send_timeout_s`; the iterator is always closed,
    so the subscription behind it is removed promptly. Plain asyncio on purpose: a connect storm
    of a thousand viewers pays this set-up a thousand times on the event loop (an anyio task
    group and a cancel scope per send cost about three times as much).
    """

    status_code = 200

    def __init__(self, content: AsyncIterator[bytes], *, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
                 headers: dict[str, str] | None = None):
        self.body_iterator = content
        self.send_timeout_s = send_timeout_s
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        names = {k for k, _ in extra}
        self.raw_headers = [h for h in _RAW_HEADERS if h[0] not in names] + extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        gone = asyncio.ensure_future(_until_disconnect(receive))
        door = getattr(self.body_iterator, "leave_door", None)  # a mass disconnect: unwound a few per turn

        def left(_: asyncio.Future) -> None:
            if not task.done():
                door.enter(task.cancel) if door is not None else task.cancel()

        gone.add_done_callback(left)
        try:
            await self._stream(send)
        except TimeoutError:
            log.info("sse: client stopped reading for %.0fs; giving up", self.send_timeout_s)
        except asyncio.CancelledError:
            if not gone.done() or gone.cancelled() or task.uncancel() > 0:
                raise  # cancelled from outside (shutdown), not by the client leaving
        finally:
            gone.cancel()
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        timeout = self.send_timeout_s
        async for chunk in self.body_iterator:
            async with asyncio.timeout(timeout):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        async with asyncio.timeout(timeout):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


_RAW_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8")] + [
    (k.lower().encode(), v.encode()) for k, v in SSE_HEADERS.items()]


def sse_response(iterator: AsyncIterator[bytes], *, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
                 headers: dict[str, str] | None = None) -> SSEResponse:
    """Stream ready-to-write SSE chunks with the Node runtime's exact headers."""
    return SSEResponse(iterator, send_timeout_s=send_timeout_s, headers=headers)
