"""How SSE requests enter the server: paced at the door, then the short way to their endpoint.

A thousand viewers opening their streams at once (the show goes live, a proxy restarts) arrive in
one or two reads of the event loop. Run back to back, their set-ups held the loop for a third of a
second, and a health probe or an operator's call that arrived in the same instant waited behind
all of them. Two things keep the loop shared:

* The door (`paced_protocol`, in the server's HTTP protocol): a new connection whose first bytes
  ask for a stream is held before uvicorn even parses them, and the door lets one such connection
  in per turn of the event loop, so whatever else arrived (a probe, a control call, a read) runs
  in between. With no storm a viewer is let in on the next turn: nothing queues.
* The short way (`StreamLane`, an ASGI middleware): a stream goes straight to its route's endpoint
  (with the app's request metrics and its ApiError answers) instead of through the cache
  middleware, the exception middleware and the router. A stream lives for an hour; each layer it
  skips is one coroutine, one send wrapper and their cells fewer for the collector to walk, for
  every open viewer (about a third of the objects a viewer used to hold). The health probes take
  it too (routes with a `probe_answer`): their answer is fresh every time, so those layers are
  pure cost, and a probe flood is what holds the loop longest among uncached routes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ApiError

DEFAULT_PER_TURN = 1
LEAVE_PER_TURN = 16  # leaving is cheaper than arriving; a thousand leave in ~60 turns
PREFIX = "/onlytrade"

ErrorHandler = Callable[[Request, ApiError], Awaitable[Response]]


class Door:
    """Runs queued callbacks `per_turn` at a time, one batch per turn of the event loop.

    Counted, not timed: the callback (uvicorn parsing the held request) is cheap, the work it
    starts runs in the loop's next turn. Measured on the 2-core box with a 1,000-viewer storm:
    one per turn kept /health p99 at 13-18 ms, two at 15-21 ms, eight at 17-36 ms, and a 1 ms
    time budget let some 50 through per turn (p99 41-51 ms). One per turn still admits faster
    than one client process can connect (the storm took the same 1.0-1.2 s).
    """

    def __init__(self, per_turn: int = DEFAULT_PER_TURN):
        self.per_turn = max(1, per_turn)
        self._queue: deque[Callable[[], None]] = deque()
        self._scheduled = False
        self.admitted = 0
        self.turns = 0
        self.max_waiting = 0

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def enter(self, callback: Callable[[], None]) -> None:
        self._queue.append(callback)
        self.max_waiting = max(self.max_waiting, len(self._queue))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._let_in)

    def _let_in(self) -> None:
        self.turns += 1
        try:
            for _ in range(min(self.per_turn, len(self._queue))):
                self.admitted += 1
                self._queue.popleft()()
        finally:
            if self._queue:  # the rest on the next turn, after I/O is polled and other work ran
                asyncio.get_running_loop().call_soon(self._let_in)
            else:
                self._scheduled = False

    def status(self) -> dict:
        return {"per_turn": self.per_turn, "admitted": self.admitted, "waiting": len(self._queue),
                "max_waiting": self.max_waiting, "turns": self.turns}


def stream_head(data: bytes, tails: frozenset[bytes]) -> bool:
    """Whether a connection's first bytes open a stream: `GET <a path whose last segment is a stream's>`."""
    if not data.startswith(b"GET "):
        return False
    end = data.find(b" ", 4)
    path = data[4:end if end > 0 else None].split(b"?", 1)[0]
    return path.rsplit(b"/", 1)[-1] in tails


def route_tail(route: Route) -> str:
    return route.path.rsplit("/", 1)[-1]


def stream_tails(routes: Iterable[Any]) -> frozenset[bytes]:
    """The last path segments of the stream routes (`events`, `stream`): what marks a stream request."""
    return frozenset(route_tail(r).encode() for r in routes if getattr(r, "stream", False))


def paced_protocol(base: type[asyncio.Protocol], door: Door, tails: frozenset[bytes]) -> type[asyncio.Protocol]:
    """`base` (uvicorn's HTTP protocol) holding a new connection's first request at the door when it
    opens a stream: not even parsed until its turn. Other requests (probes, the operator's calls,
    reads) are served at once; so is anything a connection sends after its first request."""

    class Paced(base):  # type: ignore[misc, valid-type]
        _held: bytes | None = None
        _first = True

        def data_received(self, data: bytes) -> None:
            if self._held is not None:  # more of a held request: keep it with the rest
                self._held += data
                return
            if self._first:
                self._first = False
                if stream_head(data, tails):
                    self._held = bytes(data)
                    door.enter(self._let_in)
                    return
            super().data_received(data)

        def _let_in(self) -> None:
            data, self._held = self._held, None
            if data and not self.transport.is_closing():  # a viewer that left while queued costs nothing
                super().data_received(data)

    Paced.__name__ = f"Paced{base.__name__}"
    return Paced


_PROBE_HEADERS = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))


class StreamLane:
    """ASGI middleware: GETs of a stream route or a probe (also under /onlytrade) take the short way.

    `routes` are the app's routes; those marked `stream = True` or given a `probe_answer(ctx)` are
    served here: a probe answers fresh state every time, so the cache, exception and router layers
    only cost it, and its (status, body) is sent without a request or response object.
    `wrap` wraps the short way the way the app wraps everything else that counts (the request
    metrics middleware).
    """

    def __init__(self, app: ASGIApp, routes: Iterable[Any], *, on_api_error: ErrorHandler,
                 wrap: Callable[[ASGIApp], ASGIApp] | None = None):
        self.app = app
        self.routes: list[Route] = [r for r in routes if getattr(r, "stream", False) or getattr(r, "probe_answer", None)]
        self._tails = {route_tail(r) for r in self.routes}
        self._on_api_error = on_api_error
        self._short_way = wrap(self._endpoint) if wrap else self._endpoint

    def match(self, path: str) -> tuple[Route, dict[str, Any], str] | None:
        """(route, path params, mount prefix) for a stream path, else None (one split for most paths)."""
        if path.rsplit("/", 1)[-1] not in self._tails:
            return None
        mount = PREFIX if path.startswith(PREFIX + "/") else ""
        path = path[len(mount):]
        for route in self.routes:
            found = route.path_regex.match(path)
            if found:
                params = {k: route.param_convertors[k].convert(v) for k, v in found.groupdict().items()}
                return route, params, mount
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "GET" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params, mount = found
        scope.update(route=route, endpoint=route.endpoint, path_params=params)  # as the router does
        scope["mount"] = mount
        await self._short_way(scope, receive, send)

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The mount joins root_path inside the metrics wrapper, which labels the route with it.
        scope["root_path"] = str(scope.get("root_path") or "") + scope.pop("mount")
        answer = getattr(scope["route"], "probe_answer", None)
        if answer is not None:  # (status, JSON bytes) from state, sent as they are
            status, body = answer(scope["app"].state.ctx)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-length", b"%d" % len(body)), *_PROBE_HEADERS]})
            await send({"type": "http.response.body", "body": body})
            return
        request = Request(scope, receive)
        try:
            response = await scope["endpoint"](request)
        except ApiError as exc:
            response = await self._on_api_error(request, exc)
        headers = getattr(response, "headers", {})
        if "cache-control" not in headers and (response.status_code != 200 or not getattr(scope["route"], "stream", False)):
            headers["cache-control"] = "no-store"  # as every error of the app, and every probe
        await response(scope, receive, send)
