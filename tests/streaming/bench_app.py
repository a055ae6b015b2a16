"""A minimal room server for exercising bench/sse_viewers.py (uvicorn --factory)."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from runtime_api.web.responses import fail, ok
from runtime_api.streaming import RoomHub, TooManySubscribers, parse_last_event_id, sse_response

TOKEN = "bench-secret"


def create_app() -> Starlette:
    async def build_packet(room_id: str, decision_limit: int) -> dict:
        await asyncio.sleep(0.005)
        return {"schema_version": "room.stream_packet.v1", "room_id": room_id,
                "decisions_latest": [{"cycle_number": n, "reasoning": "x" * 400} for n in range(decision_limit)]}

    hub = RoomHub(build_packet=build_packet, max_subscribers=5000)

    async def get_room_events(request: Request):
        try:
            subscription = hub.subscribe(request.path_params["room_id"],
                                         last_event_id=parse_last_event_id(request.headers.get("last-event-id")),
                                         decision_limit=request.query_params.get("decision_limit", 5))
        except TooManySubscribers as exc:
            return fail(429, exc.code)
        return sse_response(subscription)

    async def post_runtime_control(request: Request):
        if request.headers.get("x-control-token") != TOKEN:
            return fail(401, "unauthorized_control_token")
        await asyncio.sleep(0.01)  # the decision cycle
        hub.publish_decision("t_001", {"cycle_number": 1, "decisions": [{"action": "hold"}]}, None)
        return ok({"action": "step"})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await hub.close()

    return Starlette(routes=[Route("/api/rooms/{room_id}/events", get_room_events),
                             Route("/api/agent/runtime/control", post_runtime_control, methods=["POST"])],
                     lifespan=lifespan)
