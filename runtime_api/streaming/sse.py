"""Server-sent events on the wire: event framing and a response that notices a vanished client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
from starlette.responses import StreamingResponse
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


class SSEResponse(StreamingResponse):
    """A streaming response that always watches for the client going away.

    Starlette only listens for `http.disconnect` on ASGI < 2.4 and otherwise learns of a
    disconnect at the next write; an idle SSE stream may not write for a whole keepalive
    period. Here the disconnect ends the stream at once, a send blocked on a client that
    stopped reading gives up after `send_timeout_s`, and the iterator is always closed, so
    the subscription behind it is removed promptly.
    """

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], *, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
                 headers: dict[str, str] | None = None):
        super().__init__(content, headers={**SSE_HEADERS, **(headers or {})})
        self.send_timeout_s = send_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tg:

                async def stream() -> None:
                    try:
                        await self._stream(send)
                    except TimeoutError:
                        log.info("sse: client stopped reading for %.0fs; giving up", self.send_timeout_s)
                    tg.cancel_scope.cancel()

                tg.start_soon(stream)
                await self.listen_for_disconnect(receive)
                tg.cancel_scope.cancel()
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            with anyio.fail_after(self.send_timeout_s):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        with anyio.fail_after(self.send_timeout_s):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def sse_response(iterator: AsyncIterator[bytes], *, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
                 headers: dict[str, str] | None = None) -> SSEResponse:
    """Stream ready-to-write SSE chunks with the Node runtime's exact headers."""
    return SSEResponse(iterator, send_timeout_s=send_timeout_s, headers=headers)
