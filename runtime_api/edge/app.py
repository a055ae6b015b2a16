"""The edge's routes: viewer pages, room packets and SSE from the bus, and the published reads.

Nothing here can change state: there are no control routes (a POST is 405/404), no state files
are opened, and the control token is never read. `/health` says whether the bus is connected;
`/health/ready` is 503 while it is not, so a load balancer takes the edge out of rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from ..errors import ApiError
from ..web.http_cache import etag_matches
from ..web.responses import JSONResponse, fail, ok_bytes
from ..routes import pages
from ..settings import Settings
from ..streaming import StreamClosed, TooManySubscribers, clamp_decision_limit, sse_response
from ..streaming.admission import StreamLane
from ..viewer_bus.keys import read_key
from ..viewer_bus.subscriber import BusSubscriber
from .rooms import EdgeRooms

log = logging.getLogger("onlytrade.edge")


def _edge(request: Request) -> EdgeRooms:
    return request.app.state.edge


def health_body(edge: EdgeRooms, boot: float) -> dict:
    return {"ok": edge.bus.connected, "service": "onlytrade-edge", "edge": edge.edge_name,
            "uptime_s": int(time.monotonic() - boot), "viewers": edge.viewers, "rooms_watched": len(edge.rooms),
            "dropped_slow_viewers": edge.dropped_slow_viewers, "viewer_bus": edge.bus.status()}


async def get_health(request: Request) -> Response:
    """Liveness, and whether the bus is connected (ok=false while it is not)."""
    return JSONResponse(health_body(_edge(request), request.app.state.boot), headers={"cache-control": "no-store"})


async def get_ready(request: Request) -> Response:
    """200 while the bus is connected, 503 while it is not (load balancers route around it)."""
    edge = _edge(request)
    return JSONResponse(health_body(edge, request.app.state.boot), status_code=200 if edge.bus.connected else 503,
                        headers={"cache-control": "no-store"})


def _room(request: Request) -> str:
    room_id = str(request.path_params["room_id"]).strip()
    if not _edge(request).knows(room_id):
        raise ApiError(404, "room_not_found", "no room of that id on the viewer bus")
    return room_id


async def get_stream_packet(request: Request) -> Response:
    """The newest packet of the room from the bus, with this edge's `viewer_bus` state."""
    edge = _edge(request)
    room_id = _room(request)
    limit = clamp_decision_limit(request.query_params.get("decision_limit"))
    entry_id, body = edge.latest_packet(room_id, limit)  # type: ignore[misc]
    etag = f'"{entry_id}-{limit}-{int(edge.bus.connected)}"'
    headers = {"etag": etag, "cache-control": "public, max-age=1"}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(ok_bytes(body), headers=headers)


async def get_room_events(request: Request) -> Response:
    """SSE: `: connected`, what was missed after Last-Event-ID (or a `gap`), the packet, then live events."""
    edge = _edge(request)
    room_id = _room(request)
    try:
        viewer = edge.subscribe(room_id, last_event_id=request.headers.get("last-event-id"),
                                decision_limit=request.query_params.get("decision_limit"))
    except TooManySubscribers as exc:
        return fail(429, exc.code, "this edge has reached its viewer limit; retry later")
    except StreamClosed as exc:
        return fail(503, exc.code, "the edge is shutting down")
    return sse_response(viewer)


async def get_published_read(request: Request) -> Response:
    """A public read as the runtime last published it (same body, ETag and Cache-Control)."""
    edge = _edge(request)
    key = read_key("/api/" + request.path_params["path"], request.url.query)
    found = edge.bus.reads.get(key)
    if found is None:
        return fail(404, "not_on_edge", "this edge serves the published viewer reads only; ask the runtime",
                    headers={"cache-control": "no-store"})
    etag, cache_control, body = found
    headers = {"etag": etag, "cache-control": cache_control, "x-viewer-bus": "connected" if edge.bus.connected else "disconnected"}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)


def _stream_route(path: str, endpoint) -> Route:
    route = Route(path, endpoint, methods=["GET"])
    route.stream = True
    return route


def edge_routes() -> list:
    api = [
        Route("/health", get_health, methods=["GET"]),
        Route("/health/ready", get_ready, methods=["GET"]),
        Route("/api/rooms/{room_id}/stream-packet", get_stream_packet, methods=["GET"]),
        _stream_route("/api/rooms/{room_id}/events", get_room_events),
        Route("/api/{path:path}", get_published_read, methods=["GET"]),
    ]
    return [*api, *pages.routes, Mount(pages.PREFIX, routes=[*pages.routes, *api[2:]])]


async def _on_api_error(request: Request, exc: ApiError) -> Response:
    return fail(exc.status, exc.code, exc.message, headers={"cache-control": "no-store"})


async def _on_http_error(request: Request, exc: HTTPException) -> Response:
    return fail(exc.status_code, "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else "http_error",
                headers={"cache-control": "no-store", **(getattr(exc, "headers", None) or {})})


def create_edge_app(settings: Settings, *, edge_name: str) -> Starlette:
    bus = BusSubscriber(settings.viewer_bus_url, history=settings.viewer_bus_stream_maxlen,
                        reconnect_s=settings.edge_reconnect_ms / 1000)
    edge = EdgeRooms(bus, edge_name=edge_name, keepalive_ms=settings.room_events_keepalive_ms,
                     max_viewers=settings.edge_max_viewers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        task = asyncio.create_task(bus.run(), name="viewer-bus")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):  # serve at once if the bus is down; /health says so
                await bus.synced.wait()
        try:
            yield
        finally:
            edge.end_streams()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await bus.close()

    routes = edge_routes()
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ApiError: _on_api_error, HTTPException: _on_http_error},
                    # A connect storm on an edge is paced as on the runtime (streaming.admission).
                    middleware=[Middleware(StreamLane, routes=routes, on_api_error=_on_api_error)])
    app.state.edge = edge
    app.state.boot = time.monotonic()
    return app
