"""GET /api/rooms/:id/events (SSE) against the real app under real uvicorn, driven by control calls."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.viewer.helpers import AGENT, live_app, make_settings, next_of, room_stream, wait_for

pytestmark = pytest.mark.anyio

EVENTS = f"/api/rooms/{AGENT}/events"


async def test_headers_connected_then_a_packet_then_each_decision_without_prompts(root):
    async with live_app(make_settings(root)) as live:
        await live.start_agent()
        async with room_stream(live.client, EVENTS + "?decision_limit=2&interval_ms=2000") as (response, events):
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache, no-transform"
            assert response.headers["connection"] == "keep-alive"
            assert response.headers["x-accel-buffering"] == "no"
            assert await anext(events) == {"comment": "connected"}
            first = await anext(events)
            assert first["event"] == "stream_packet" and first["id"] == 1
            assert first["data"]["schema_version"] == "room.stream_packet.v1" and first["data"]["decisions_latest"] == []

            step = await live.step()
            decision = await next_of(events, "decision")
            data = decision["data"]
            assert data["schema_version"] == "room.decision_event.v1" and data["room_id"] == AGENT
            assert data["decision"]["cycle_number"] == step["cycle"]["decisions"][0]["cycle_number"] == 1
            assert "system_prompt" not in data["decision"] and "input_prompt" not in data["decision"]
            assert data["decision"]["reasoning_steps_cn"] and data["decision"]["decisions"][0]["reasoning"]
            assert data["decision_meta"]["cycle_number"] == 1
            # The room's viewers get a fresh packet right after, built after the decision.
            pushed = await next_of(events, "stream_packet")
            assert pushed["id"] > decision["id"]
            assert pushed["data"]["decisions_latest"][0]["cycle_number"] == 1
            assert pushed["data"]["status"]["call_count"] == 1
        stats = live.hub.stats(AGENT)
        # interval_ms is ignored (W19): the room keeps the server's packet period.
        assert live.hub.packet_interval_ms == live.ctx.settings.room_events_stream_packet_interval_ms == 15000
        assert stats["timer_ticks"] == 0


async def test_kill_switch_and_pause_reach_viewers_at_once(root):
    async with live_app(make_settings(root)) as live:
        await live.start_agent()
        async with room_stream(live.client, EVENTS) as (_, events):
            assert (await next_of(events, "stream_packet"))["data"]["runtime"]["kill_switch"]["active"] is False
            await live.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "halt"})
            killed = (await next_of(events, "stream_packet"))["data"]
            assert killed["runtime"]["kill_switch"] == {"active": True, "reason": "halt",
                                                        "activated_at": killed["runtime"]["kill_switch"]["activated_at"]}
            assert killed["runtime"]["state"]["paused_reason"] == "kill_switch"
            await live.control("/api/agent/runtime/kill-switch", {"action": "deactivate"})
            await next_of(events, "stream_packet")
            await live.control("/api/agent/runtime/control", {"action": "pause"})
            paused = (await next_of(events, "stream_packet"))["data"]
            assert paused["runtime"]["paused_reason"] == "manual" and paused["runtime"]["state"]["running"] is False


async def test_reconnect_with_last_event_id_replays_what_was_missed(root):
    # Narration off: this test pins the exact event sequence of decisions and packets.
    async with live_app(make_settings(root, CHAT_DECISION_NARRATION_ENABLED="false")) as live:
        await live.start_agent()
        async with room_stream(live.client, EVENTS) as (_, events):
            await next_of(events, "stream_packet")
            await live.step()
            seen = await next_of(events, "decision")
            await next_of(events, "stream_packet")
        await wait_for(lambda: live.hub.stats(AGENT)["subscribers"] == 0)
        # Two decisions while nobody watches (within the buffer TTL).
        missed = [(await live.step())["cycle"]["decisions"][0]["cycle_number"] for _ in range(2)]

        headers = {"Last-Event-ID": str(seen["id"])}
        async with room_stream(live.client, EVENTS, headers) as (_, events):
            assert await anext(events) == {"comment": "connected"}
            replayed = [await anext(events) for _ in range(4)]
        # The newest packet pushed after the seen decision, the two missed decisions, then the initial packet.
        assert [e["event"] for e in replayed] == ["stream_packet", "decision", "decision", "stream_packet"]
        ids = [e["id"] for e in replayed]
        assert seen["id"] < ids[0] and ids == sorted(ids)
        assert [e["data"]["decision"]["cycle_number"] for e in replayed[1:3]] == missed == [2, 3]
        assert replayed[-1]["data"]["decisions_latest"][0]["cycle_number"] == 3


async def test_the_subscriber_cap_answers_429(root):
    async with live_app(make_settings(root)) as live:
        await live.start_agent()
        live.hub.max_subscribers = 1
        async with room_stream(live.client, EVENTS) as (_, events):
            await next_of(events, "stream_packet")
            refused = await live.client.get(EVENTS)
            assert refused.status_code == 429
            assert refused.json()["error"] == "too_many_subscribers"


async def test_a_stream_ends_with_bye_after_its_maximum_duration(root):
    async with live_app(make_settings(root)) as live:
        await live.start_agent()
        live.hub.max_stream_ms = 400
        async with room_stream(live.client, EVENTS) as (_, events):
            async with asyncio.timeout(5):
                received = [event async for event in events]
        assert [e.get("event") for e in received] == [None, "stream_packet", "bye"]
        assert received[-1]["data"] == {"reason": "max_stream_duration", "reconnect": True}
        await wait_for(lambda: live.hub.stats(AGENT)["subscribers"] == 0)


async def test_a_viewer_that_stops_reading_is_dropped_and_the_others_keep_up(root):
    async with live_app(make_settings(root)) as live:
        await live.start_agent()
        live.hub.queue_size = 8
        host, port = live.base.removeprefix("http://").split(":")
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((host, int(port)))
        stuck.sendall(f"GET {EVENTS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        try:
            async with room_stream(live.client, EVENTS) as (_, events):
                await next_of(events, "stream_packet")
                await wait_for(lambda: live.hub.stats(AGENT)["subscribers"] == 2)
                blob = {"text": "x" * 65536}
                received: list[int] = []

                async def read(count: int) -> None:
                    async for event in events:
                        if event.get("event") == "chat_public_append":
                            received.append(event["data"]["n"])
                            if len(received) == count:
                                return

                reader = asyncio.create_task(read(200))
                for n in range(200):
                    live.hub.publish(AGENT, "chat_public_append", {"n": n, **blob})
                    if n % 4 == 3:
                        await asyncio.sleep(0.002)
                async with asyncio.timeout(15):
                    await reader
                assert received == list(range(200))
                stats = live.hub.stats(AGENT)
                assert (stats["subscribers"], stats["dropped_slow_viewers"]) == (1, 1)
        finally:
            stuck.close()


async def test_a_room_nobody_watches_does_no_periodic_work(root):
    async with live_app(make_settings(root)) as live:
        await live.start_agent()
        await live.step()
        assert live.hub.stats(AGENT) is None, "a decision alone creates no room state"
        async with room_stream(live.client, EVENTS) as (_, events):
            await next_of(events, "stream_packet")
            assert live.hub.stats(AGENT)["timer_running"] is True
        await wait_for(lambda: not live.hub.stats(AGENT)["timer_running"])
