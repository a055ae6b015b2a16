"""Viewer streams: the room stream packet, the room SSE events, the market SSE stream.

`install_viewer_streams(ctx)` builds the app's RoomHub and MarketStream and hooks the hub to the
decision loop; every route here reads `ctx.extra["viewer_streams"]`. A viewer cannot make the server
work harder by asking: the packet period is the server's (`interval_ms` is ignored, W19), builds are
single-flight per room, and both streams cap their subscribers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..streaming import packet
from ..access.connections import descriptor_budget
from ..access.control_route import read_route
from ..errors import ApiError, bad_request, not_found
from ..web.http import query_str
from ..web.responses import JSONResponse, fail, ok, ok_bytes
from ..streaming import (
    MarketStream,
    RoomHub,
    StreamClosed,
    TooManySubscribers,
    clamp_decision_limit,
    parse_last_event_id,
    parse_symbols,
    sse_response,
)

log = logging.getLogger("onlytrade.rooms")

KEY = "viewer_streams"
MAX_ROOM_SUBSCRIBERS = 2000
MAX_MARKET_SUBSCRIBERS = 1000
MAX_MARKET_SYMBOLS = 20


@dataclass
class ViewerStreams:
    """The viewer side of one app: the room hub, the market stream and the packet builder."""

    hub: RoomHub
    market: MarketStream
    packets: packet.RoomPackets
    test_mode: bool = False

    def on_decision(self, agent_id: str, record: dict, meta: dict) -> None:
        """Decision listener: a `decision` event at once, then a fresh packet for the room's viewers."""
        self.packets.remember(agent_id, record, meta)
        self.hub.publish_decision(agent_id, packet.viewer_decision(record), meta)
        self.hub.refresh(agent_id)

    def state_changed(self, room_id: str | None = None) -> None:
        """Kill switch, pause, resume or reset: every watched room (or one) gets a fresh packet now."""
        self.hub.refresh(room_id)

    def end_streams(self, reason: str = "server_shutdown") -> None:
        self.hub.end_streams(reason)
        self.market.end_streams(reason)

    def end_streams_soon(self) -> None:
        """Safe from a signal handler: end every stream (with `event: bye`) on the loop's next turn."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_soon_threadsafe(self.end_streams)

    async def close(self) -> None:
        await self.hub.close()
        await self.market.close()


def _truthy_env(environ: Mapping[str, str], name: str) -> bool:
    return str(environ.get(name, "")).strip().lower() == "true"


def install_viewer_streams(ctx, environ: Mapping[str, str] | None = None) -> ViewerStreams:
    """Build the hub and the market stream for `ctx`, register the decision listener, store them.

    `ROOM_EVENTS_TEST_MODE=true` (read from the environment, as the Node runtime) enables the
    test-only stats route and `ROOM_EVENTS_PACKET_BUILD_DELAY_MS`, a delay added to every build.
    """
    env = os.environ if environ is None else environ
    test_mode = _truthy_env(env, "ROOM_EVENTS_TEST_MODE")
    delay = 0
    if test_mode:
        try:
            delay = max(0, min(30_000, int(float(env.get("ROOM_EVENTS_PACKET_BUILD_DELAY_MS") or 0))))
        except ValueError:
            delay = 0
    packets = packet.RoomPackets(ctx, build_delay_ms=delay)
    # Viewer caps are shares of the descriptor budget, so viewers cannot crowd out the operator.
    budget = ctx.extra["descriptor_budget"] = descriptor_budget(ctx.settings)
    hub = RoomHub.from_settings(ctx.settings, build_packet=packets.build,
                                max_subscribers=min(MAX_ROOM_SUBSCRIBERS, budget.room_viewers))
    market = MarketStream(latest_bars(ctx), poll_ms=ctx.settings.market_stream_poll_ms,
                          max_symbols=MAX_MARKET_SYMBOLS, keepalive_ms=ctx.settings.room_events_keepalive_ms,
                          max_subscribers=min(MAX_MARKET_SUBSCRIBERS, budget.market_viewers),
                          max_stream_ms=ctx.settings.sse_max_stream_ms)
    streams = ViewerStreams(hub=hub, market=market, packets=packets, test_mode=test_mode)
    ctx.extra[KEY] = streams
    ctx.runtime.listeners.append(streams.on_decision)
    return streams


def latest_bars(ctx):
    """MarketStream's source: the newest bar per symbol from the market service, off the event loop."""
    service = ctx.svc.market

    def read(symbols: list[str], interval: str) -> dict[str, dict | None]:
        out: dict[str, dict | None] = {}
        for symbol in symbols:
            try:
                frames = service.get_frames(symbol, interval, 1)["frames"]
            except ApiError:  # not a CN/US symbol, or strict live mode without live bars
                frames = []
            out[symbol] = frames[-1] if frames else None
        return out

    async def get_latest(symbols: list[str], interval: str) -> dict[str, dict | None]:
        return await anyio.to_thread.run_sync(read, symbols, interval)

    return get_latest


def streams_of(request: Request) -> ViewerStreams:
    return request.app.state.ctx.extra[KEY]


def stream_route(path: str, endpoint) -> Route:
    """A public GET that answers with an endless SSE stream (so not walked by the read-only GET tests)."""
    route = Route(path, endpoint, methods=["GET"], name=endpoint.__name__)
    route.control = False
    route.read_only = False
    route.stream = True
    return route


# ---- handlers ------------------------------------------------------------------------------


async def get_stream_packet(request: Request) -> Response:
    """The room's `room.stream_packet.v1` (decision_limit 1..20, default 5)."""
    ctx = request.app.state.ctx
    room_id = packet.room_record(ctx, request.path_params["room_id"])["agent_id"]
    limit = clamp_decision_limit(request.query_params.get("decision_limit"))
    try:
        body = await streams_of(request).hub.request_packet_json(room_id, limit)
    except ApiError:
        raise
    except Exception:
        log.exception("room %s: stream packet failed", room_id)
        raise ApiError(500, "stream_packet_failed") from None
    return JSONResponse(ok_bytes(body))


async def get_room_events(request: Request) -> Response:
    """SSE: `: connected`, missed events after Last-Event-ID, a packet, then decisions and packets."""
    ctx = request.app.state.ctx
    room_id = packet.room_record(ctx, request.path_params["room_id"])["agent_id"]
    try:
        subscription = streams_of(request).hub.subscribe(
            room_id,
            last_event_id=parse_last_event_id(request.headers.get("last-event-id")),
            decision_limit=clamp_decision_limit(request.query_params.get("decision_limit")),
        )
    except TooManySubscribers as exc:
        return fail(429, exc.code, "this server has reached its viewer limit; retry later")
    except StreamClosed as exc:
        return fail(503, exc.code, "the server is shutting down")
    return sse_response(subscription)


async def get_market_stream(request: Request) -> Response:
    """SSE: `ready`, then the newest bar of each symbol whenever it changes (one shared poller)."""
    symbols = parse_symbols(request.query_params.get("symbols"))
    interval = query_str(request, "interval") or "1m"
    try:
        viewer = streams_of(request).market.subscribe(symbols, interval)
    except ValueError as exc:
        code = str(exc)
        message = f"at most {MAX_MARKET_SYMBOLS} symbols" if code == "too_many_symbols" else None
        raise bad_request(code, message) from None
    except TooManySubscribers as exc:
        return fail(429, exc.code, "this server has reached its viewer limit; retry later")
    except StreamClosed as exc:
        return fail(503, exc.code, "the server is shutting down")
    return sse_response(viewer)


async def get_packet_build_stats(request: Request) -> Response:
    """Test-only (ROOM_EVENTS_TEST_MODE=true): one room's packet build counters."""
    streams = streams_of(request)
    if not streams.test_mode:
        raise not_found()
    room_id = str(request.path_params["room_id"]).strip()
    room = streams.hub.stats(room_id)
    if room is None:
        raise ApiError(404, "room_not_found", "no packet build state for this room")
    hub = streams.hub.stats()
    counters: dict[str, Any] = streams.packets.room_stats(room_id)
    return ok({
        **room,
        **counters,
        "build_started_count": room["builds"],
        "joined_call_count": room["joined_builds"],
        "context_overview_fetch_count": 0,
        "context_digest_fetch_count": 0,
        "global_build_started_count": hub["builds_started"],
        "global_max_concurrency": hub["max_builds_running"],
        "hub": hub,
    })


routes = [
    read_route("/api/rooms/{room_id}/stream-packet", get_stream_packet),
    stream_route("/api/rooms/{room_id}/events", get_room_events),
    stream_route("/api/market/stream", get_market_stream),
    read_route("/api/_test/rooms/{room_id}/packet-build-stats", get_packet_build_stats),
]
