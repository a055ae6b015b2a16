"""The room SSE stream over real HTTP: uvicorn on a loopback port, httpx streaming clients."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from runtime_api.web.responses import fail
from runtime_api.streaming import RoomHub, TooManySubscribers, parse_last_event_id, sse_response
from tests.streaming.helpers import PacketBuilder, serve, sse_events

pytestmark = pytest.mark.anyio


def room_app(hub: RoomHub) -> Starlette:
    async def get_room_events(request: Request):
        try:
            subscription = hub.subscribe(
                request.path_params["room_id"],
                last_event_id=parse_last_event_id(request.headers.get("last-event-id")),
                decision_limit=request.query_params.get("decision_limit", 5),
            )
        except TooManySubscribers as exc:
            return fail(429, exc.code)
        return sse_response(subscription, send_timeout_s=0.5)

    return Starlette(routes=[Route("/api/rooms/{room_id}/events", get_room_events)])


def make_hub(builder: PacketBuilder, **options) -> RoomHub:
    defaults = {"packet_interval_ms": 60_000, "keepalive_ms": 60_000, "packet_cache_ms": 0}
    return RoomHub(build_packet=builder, **{**defaults, **options})


async def wait_for(predicate, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_connected_and_initial_packet_with_sse_headers():
    hub = make_hub(PacketBuilder())
    async with serve(room_app(hub)) as base, httpx.AsyncClient(base_url=base) as client:
        async with client.stream("GET", "/api/rooms/t_001/events?decision_limit=2") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache, no-transform"
            assert response.headers["connection"] == "keep-alive"
            assert response.headers["x-accel-buffering"] == "no"
            lines = response.aiter_lines()
            assert await anext(lines) == ": connected"
            assert await anext(lines) == ""
            events = sse_events(lines)
            packet = await anext(events)
            assert (packet["event"], packet["id"]) == ("stream_packet", 1)
            assert len(packet["data"]["decisions_latest"]) == 2

            event_id = hub.publish_decision("t_001", {"cycle_number": 1})
            decision = await anext(events)
            assert (decision["event"], decision["id"]) == ("decision", event_id)
        await hub.close()


async def test_disconnect_removes_the_subscription_promptly():
    hub = make_hub(PacketBuilder())
    async with serve(room_app(hub)) as base, httpx.AsyncClient(base_url=base) as client:
        async with client.stream("GET", "/api/rooms/t_001/events") as response:
            await anext(sse_events(response.aiter_lines()))
            assert hub.stats("t_001")["subscribers"] == 1
        # Keepalive is a minute away: the server must learn of the disconnect from the socket.
        await wait_for(lambda: hub.stats("t_001")["subscribers"] == 0, timeout=1.0)
        assert not hub.stats("t_001")["timer_running"]
        await hub.close()


async def test_reconnect_with_last_event_id_replays_what_was_missed():
    hub = make_hub(PacketBuilder())
    async with serve(room_app(hub)) as base, httpx.AsyncClient(base_url=base) as client:
        async with client.stream("GET", "/api/rooms/t_001/events") as response:
            events = sse_events(response.aiter_lines())
            assert await anext(events) == {"comment": "connected"}
            assert (await anext(events))["event"] == "stream_packet"
            hub.publish("t_001", "chat_public_append", {"n": 1})
            chat = await anext(events)
            assert chat["event"] == "chat_public_append"
            last_seen = chat["id"]
        await wait_for(lambda: hub.stats("t_001")["subscribers"] == 0)
        missed = [hub.publish_decision("t_001", {"cycle_number": n}) for n in (1, 2)]

        headers = {"Last-Event-ID": str(last_seen)}
        async with client.stream("GET", "/api/rooms/t_001/events", headers=headers) as response:
            events = sse_events(response.aiter_lines())
            assert await anext(events) == {"comment": "connected"}
            replayed = [await anext(events), await anext(events)]
            assert [(e["event"], e["id"]) for e in replayed] == [("decision", i) for i in missed]
            packet = await anext(events)
            assert packet["event"] == "stream_packet" and packet["id"] > missed[-1]
        await hub.close()


async def test_over_the_cap_is_429():
    hub = make_hub(PacketBuilder(), max_subscribers=1)
    async with serve(room_app(hub)) as base, httpx.AsyncClient(base_url=base) as client:
        async with client.stream("GET", "/api/rooms/t_001/events") as response:
            await anext(sse_events(response.aiter_lines()))
            refused = await client.get("/api/rooms/t_001/events")
            assert refused.status_code == 429
            assert refused.json() == {"success": False, "error": "too_many_subscribers"}
        await hub.close()


async def test_bye_then_end_of_stream_after_max_duration():
    hub = make_hub(PacketBuilder(), max_stream_ms=200)
    async with serve(room_app(hub)) as base, httpx.AsyncClient(base_url=base) as client:
        async with client.stream("GET", "/api/rooms/t_001/events") as response:
            async with asyncio.timeout(2):
                events = [event async for event in sse_events(response.aiter_lines())]
        assert [e.get("event") for e in events] == [None, "stream_packet", "bye"]
        assert events[-1]["data"] == {"reason": "max_stream_duration", "reconnect": True}
        await hub.close()


async def test_close_ends_open_streams():
    hub = make_hub(PacketBuilder())
    async with serve(room_app(hub)) as base, httpx.AsyncClient(base_url=base) as client:
        async with client.stream("GET", "/api/rooms/t_001/events") as response:
            events = sse_events(response.aiter_lines())
            await anext(events)
            await anext(events)
            await hub.close()
            async with asyncio.timeout(2):
                rest = [event async for event in events]
        assert rest == [{"event": "bye", "data": {"reason": "server_shutdown", "reconnect": True}}]


async def test_a_client_that_stops_reading_is_dropped_and_others_get_everything(caplog):
    caplog.set_level(logging.INFO, logger="runtime_api.streaming.sse")
    hub = make_hub(PacketBuilder(), queue_size=8)
    payload = {"blob": "x" * 65536}
    async with serve(room_app(hub)) as base, httpx.AsyncClient(base_url=base) as client:
        host, port = base.removeprefix("http://").split(":")
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((host, int(port)))
        stuck.sendall(b"GET /api/rooms/t_001/events HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            async with client.stream("GET", "/api/rooms/t_001/events") as response:
                events = sse_events(response.aiter_lines())
                await anext(events)
                await anext(events)
                await wait_for(lambda: hub.stats("t_001")["subscribers"] == 2)

                received = []

                async def read(count: int) -> None:
                    async for event in events:
                        received.append(event["id"])
                        if len(received) == count:
                            return

                reader = asyncio.create_task(read(300))
                published = []
                for n in range(300):
                    published.append(hub.publish("t_001", "decision", {"n": n, **payload}))
                    if n % 4 == 3:
                        await asyncio.sleep(0.002)
                async with asyncio.timeout(10):
                    await reader
                assert received == published
                stats = hub.stats("t_001")
                assert (stats["subscribers"], stats["dropped_slow_viewers"]) == (1, 1)
                # Its response gives up on the blocked socket instead of holding a task forever.
                await wait_for(lambda: "stopped reading" in caplog.text)
        finally:
            stuck.close()
        await hub.close()
