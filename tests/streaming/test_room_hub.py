"""RoomHub against real asyncio: ordering, replay, single-flight builds, back-pressure, lifetimes."""

from __future__ import annotations

import asyncio

import pytest

from runtime_api.errors import ApiError
from runtime_api.settings import Settings
from runtime_api.streaming import RoomHub, StreamClosed, TooManySubscribers
from tests.streaming.helpers import PacketBuilder, next_event, parse_event

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def make_hub(builder: PacketBuilder, **options) -> RoomHub:
    defaults = {"packet_interval_ms": 60_000, "keepalive_ms": 60_000, "packet_cache_ms": 0}
    return RoomHub(build_packet=builder, **{**defaults, **options})


async def opened(sub) -> list[dict]:
    """Read `: connected`, any replay and the initial packet."""
    events = []
    while True:
        event = await next_event(sub)
        events.append(event)
        if event.get("event") == "stream_packet" and event.get("id") == sub.packet_id:
            return events


async def test_connected_then_initial_packet_then_live_events():
    builder = PacketBuilder()
    hub = make_hub(builder)
    sub = hub.subscribe("t_001", decision_limit=3)
    assert await next_event(sub) == {"comment": "connected"}
    packet = await next_event(sub)
    assert packet["event"] == "stream_packet"
    assert packet["id"] == sub.packet_id == 1
    assert packet["data"]["room_id"] == "t_001"
    assert len(packet["data"]["decisions_latest"]) == 3
    assert builder.calls == [("t_001", 3)]

    assert hub.publish("t_001", "chat_public_append", {"text": "hi"}) == 2
    event = await next_event(sub)
    assert event == {"id": 2, "event": "chat_public_append", "data": {"text": "hi"}}
    assert hub.stats("t_001")["buffered_events"] == 1, "the initial packet is not buffered"
    await hub.close()


async def test_publish_decision_event_shape():
    clock = Clock()
    hub = make_hub(PacketBuilder(), now_ms=clock)
    sub = hub.subscribe("t_001")
    await opened(sub)
    decision = {"cycle_number": 7, "decisions": [{"action": "buy", "symbol": "600519.SH"}]}
    event_id = hub.publish_decision("t_001", decision, {"cycle_number": 7})
    event = await next_event(sub)
    assert event == {
        "id": event_id,
        "event": "decision",
        "data": {
            "schema_version": "room.decision_event.v1",
            "room_id": "t_001",
            "ts_ms": clock.ms,
            "decision": decision,
            "decision_meta": {"cycle_number": 7},
        },
    }
    await hub.close()


async def test_reconnect_replays_events_published_while_nobody_watched_within_ttl():
    clock = Clock()
    hub = make_hub(PacketBuilder(), buffer_ttl_ms=60_000, now_ms=clock)
    first = hub.subscribe("t_001")
    await opened(first)
    seen = hub.publish("t_001", "decision", {"n": 1})
    assert (await next_event(first))["id"] == seen
    await first.aclose()
    assert hub.stats("t_001")["subscribers"] == 0

    clock.ms += 30_000
    missed = [hub.publish("t_001", "decision", {"n": n}) for n in (2, 3)]
    assert None not in missed

    again = hub.subscribe("t_001", last_event_id=seen)
    events = await opened(again)
    assert events[0] == {"comment": "connected"}
    assert [(e["id"], e["data"]["n"]) for e in events[1:-1]] == list(zip(missed, (2, 3), strict=True))
    assert events[-1]["id"] > missed[-1]
    await hub.close()


async def test_nothing_is_recorded_or_replayed_after_the_ttl():
    clock = Clock()
    hub = make_hub(PacketBuilder(), buffer_ttl_ms=60_000, now_ms=clock)
    first = hub.subscribe("t_001")
    await opened(first)
    before = hub.publish("t_001", "decision", {"n": 1})
    await first.aclose()

    clock.ms += 60_001
    assert hub.publish("t_001", "decision", {"n": 2}) is None
    assert hub.stats("t_001")["buffered_events"] == 0

    again = hub.subscribe("t_001", last_event_id=before - 1)
    events = await opened(again)
    assert [e.get("event") for e in events] == [None, "stream_packet"]
    await hub.close()


async def test_a_room_nobody_watched_records_nothing():
    hub = make_hub(PacketBuilder())
    assert hub.publish("t_009", "decision", {"n": 1}) is None
    assert hub.stats("t_009") is None
    await hub.close()


async def test_buffered_stream_packets_are_replayed_newest_only():
    builder = PacketBuilder()
    hub = make_hub(builder, packet_interval_ms=40)
    watcher = hub.subscribe("t_001")
    await opened(watcher)
    ticks = [await next_event(watcher) for _ in range(3)]
    assert [e["event"] for e in ticks] == ["stream_packet"] * 3
    decision_id = hub.publish("t_001", "decision", {"n": 1})

    late = hub.subscribe("t_001", last_event_id=ticks[0]["id"] - 1)
    events = await opened(late)
    replayed = events[1:-1]
    assert [(e["event"], e["id"]) for e in replayed] == [("stream_packet", ticks[2]["id"]), ("decision", decision_id)]
    assert replayed[0]["data"] == ticks[2]["data"]
    await hub.close()


async def test_last_event_id_from_another_process_replays_the_whole_buffer():
    hub = make_hub(PacketBuilder())
    sub = hub.subscribe("t_001")
    await opened(sub)
    ids = [hub.publish("t_001", "decision", {"n": n}) for n in range(3)]
    again = hub.subscribe("t_001", last_event_id=10_000)
    events = await opened(again)
    assert [e["id"] for e in events[1:-1]] == ids
    await hub.close()


async def test_concurrent_requests_share_one_build():
    builder = PacketBuilder()
    builder.gate = asyncio.Event()
    hub = make_hub(builder)
    requests = [asyncio.create_task(hub.request_packet("t_001", 5)) for _ in range(10)]
    await asyncio.sleep(0.01)
    builder.gate.set()
    packets = await asyncio.gather(*requests)
    assert len(builder.calls) == 1
    assert all(p is packets[0] for p in packets)
    stats = hub.stats("t_001")
    assert (stats["builds"], stats["joined_builds"]) == (1, 9)
    await hub.close()


async def test_a_higher_limit_does_not_join_a_lower_build_but_a_lower_joins_a_higher():
    builder = PacketBuilder()
    builder.gate = asyncio.Event()
    hub = make_hub(builder)
    low = asyncio.create_task(hub.request_packet("t_001", 3))
    await asyncio.sleep(0.01)
    high = asyncio.create_task(hub.request_packet("t_001", 8))
    await asyncio.sleep(0.01)
    assert builder.calls == [("t_001", 3)], "the higher limit waits for the lower build to land"
    builder.gate.set()
    low_packet, high_packet = await asyncio.gather(low, high)
    assert builder.calls == [("t_001", 3), ("t_001", 8)]
    assert len(low_packet["decisions_latest"]) == 3
    assert len(high_packet["decisions_latest"]) == 8
    assert builder.max_running == 1

    builder.gate = asyncio.Event()
    high = asyncio.create_task(hub.request_packet("t_001", 10))
    await asyncio.sleep(0.01)
    low = asyncio.create_task(hub.request_packet("t_001", 2))
    await asyncio.sleep(0.01)
    builder.gate.set()
    high_packet, low_packet = await asyncio.gather(high, low)
    assert builder.calls[2:] == [("t_001", 10)]
    assert len(low_packet["decisions_latest"]) == 2, "the joined packet is cut to the limit asked for"
    assert high_packet["decision_latest"] == low_packet["decision_latest"]
    await hub.close()


async def test_builds_are_serialised_across_rooms():
    builder = PacketBuilder(delay_s=0.02)
    hub = make_hub(builder)
    await asyncio.gather(*(hub.request_packet(room, 5) for room in ("t_001", "t_002", "t_003")))
    assert len(builder.calls) == 3 and builder.max_running == 1
    await hub.close()


async def test_a_decision_makes_the_next_request_build_afresh():
    builder = PacketBuilder()
    builder.gate = asyncio.Event()
    hub = make_hub(builder, packet_cache_ms=60_000)
    stale = asyncio.create_task(hub.request_packet("t_001", 5))
    await asyncio.sleep(0.01)
    hub.publish_decision("t_001", {"cycle_number": 1})
    fresh = asyncio.create_task(hub.request_packet("t_001", 5))
    await asyncio.sleep(0.01)
    builder.gate.set()
    await asyncio.gather(stale, fresh)
    assert len(builder.calls) == 2, "a build started before the decision is not joined after it"

    cached = await hub.request_packet("t_001", 5)
    assert len(builder.calls) == 2 and cached["build"] == 2
    hub.publish_decision("t_001", {"cycle_number": 2})
    assert (await hub.request_packet("t_001", 5))["build"] == 3
    await hub.close()


async def test_packet_cost_does_not_grow_with_viewers():
    builder = PacketBuilder()
    hub = make_hub(builder, packet_interval_ms=50)
    viewers = [hub.subscribe("t_001", decision_limit=1 + n % 7) for n in range(50)]
    openings = await asyncio.gather(*(opened(viewer) for viewer in viewers))
    assert len(builder.calls) == 1, "50 initial packets, one build"
    assert [len(o[-1]["data"]["decisions_latest"]) for o in openings[:7]] == [1, 2, 3, 4, 5, 6, 7]

    ticks = 4
    for viewer in viewers:
        for _ in range(ticks):
            assert (await next_event(viewer))["event"] == "stream_packet"
    stats = hub.stats("t_001")
    assert stats["timer_ticks"] >= ticks
    assert len(builder.calls) == 1 + stats["timer_ticks"], "one build per tick for the whole room"
    assert {limit for _, limit in builder.calls[1:]} == {7}, "built for the largest decision_limit"
    await hub.close()


async def test_viewers_arriving_one_by_one_share_a_fresh_packet():
    builder = PacketBuilder()
    hub = make_hub(builder, packet_cache_ms=10_000)
    for _ in range(20):
        await opened(hub.subscribe("t_001"))
    assert len(builder.calls) == 1
    assert hub.stats("t_001")["cache_hits"] == 19
    await hub.close()


async def test_viewers_cannot_change_the_packet_interval_and_limits_are_clamped():
    builder = PacketBuilder()
    hub = make_hub(builder, packet_interval_ms=60_000)
    sub = hub.subscribe("t_001", decision_limit=500)
    await opened(sub)
    assert builder.calls == [("t_001", 20)]
    other = hub.subscribe("t_002", decision_limit=0)
    await opened(other)
    assert builder.calls[-1] == ("t_002", 1)
    await asyncio.sleep(0.1)
    assert hub.stats("t_001")["timer_ticks"] == 0
    await hub.close()


async def test_subscriber_cap():
    hub = make_hub(PacketBuilder(), max_subscribers=3)
    subs = [hub.subscribe(room) for room in ("t_001", "t_001", "t_002")]
    with pytest.raises(TooManySubscribers) as caught:
        hub.subscribe("t_003")
    assert caught.value.code == "too_many_subscribers"
    await subs[0].aclose()
    hub.subscribe("t_003")
    assert hub.stats()["subscribers"] == 3
    await hub.close()


async def test_a_slow_viewer_is_dropped_and_a_fast_one_gets_every_event_in_order():
    hub = make_hub(PacketBuilder(), queue_size=8)
    slow = hub.subscribe("t_001")
    fast = hub.subscribe("t_001")
    await opened(slow)
    await opened(fast)

    received = []

    async def read_fast():
        async for chunk in fast:
            received.append(chunk)
            if len(received) == 100:
                return

    reader = asyncio.create_task(read_fast())
    ids = []
    for n in range(100):
        ids.append(hub.publish("t_001", "decision", {"n": n}))
        if n % 4 == 3:
            await asyncio.sleep(0)  # let the fast reader run; the slow one never reads
    async with asyncio.timeout(2):
        await reader

    events = [parse_event(c) for c in received]
    assert [e["id"] for e in events] == ids
    assert [e["data"]["n"] for e in events] == list(range(100))

    assert slow.closed and slow.close_reason == "slow_viewer"
    rest = [parse_event(chunk) async for chunk in slow]
    assert rest == [{"event": "bye", "data": {"reason": "slow_viewer", "reconnect": True}}], "no backlog"
    stats = hub.stats("t_001")
    assert (stats["subscribers"], stats["dropped_slow_viewers"]) == (1, 1)
    await hub.close()


async def test_bye_after_max_stream_duration():
    hub = make_hub(PacketBuilder(), max_stream_ms=150)
    sub = hub.subscribe("t_001")
    await opened(sub)
    bye = await next_event(sub, timeout=1)
    assert bye == {"event": "bye", "data": {"reason": "max_stream_duration", "reconnect": True}}
    with pytest.raises(StopAsyncIteration):
        await anext(sub)
    assert hub.stats("t_001")["subscribers"] == 0
    await hub.close()


async def test_keepalive_comments_in_quiet_periods():
    hub = make_hub(PacketBuilder(), keepalive_ms=50)
    sub = hub.subscribe("t_001")
    await opened(sub)
    started = asyncio.get_running_loop().time()
    assert await next_event(sub) == {"comment": "keepalive"}
    assert await next_event(sub) == {"comment": "keepalive"}
    assert asyncio.get_running_loop().time() - started >= 0.09
    await hub.close()


async def test_build_failures_become_error_events():
    builder = PacketBuilder()
    builder.fail_with = ApiError(500, "stream_packet_failed_for_test")
    hub = make_hub(builder, packet_interval_ms=50)
    sub = hub.subscribe("t_001")
    assert await next_event(sub) == {"comment": "connected"}
    assert await next_event(sub) == {"event": "error", "data": {"error": "stream_packet_failed_for_test"}}
    builder.fail_with = RuntimeError("/secret/path exploded")
    tick = await next_event(sub)
    assert tick["event"] == "error" and tick["data"] == {"error": "stream_packet_failed"}
    assert "id" in tick, "a broadcast error is a buffered event"
    builder.fail_with = None
    assert (await next_event(sub))["event"] == "stream_packet"
    assert hub.stats("t_001")["build_failures"] >= 2
    with pytest.raises(RuntimeError):
        builder.fail_with = RuntimeError("boom")
        await hub.request_packet("t_001", 5)
    await hub.close()


async def test_a_hung_build_times_out():
    builder = PacketBuilder()
    builder.gate = asyncio.Event()
    hub = make_hub(builder, build_timeout_ms=50)
    with pytest.raises(TimeoutError):
        await hub.request_packet("t_001", 5)
    assert hub.stats("t_001")["build_in_flight"] is False
    await hub.close()


async def test_timer_runs_only_while_the_room_has_viewers():
    builder = PacketBuilder()
    hub = make_hub(builder, packet_interval_ms=30)
    sub = hub.subscribe("t_001")
    await opened(sub)
    assert hub.stats("t_001")["timer_running"]
    await sub.aclose()
    stats = hub.stats("t_001")
    assert not stats["timer_running"] and stats["subscribers"] == 0
    calls = len(builder.calls)
    await asyncio.sleep(0.1)
    assert len(builder.calls) == calls
    await hub.close()


async def test_push_packet_broadcasts_now():
    builder = PacketBuilder()
    hub = make_hub(builder)
    assert await hub.push_packet("t_001") is None
    sub = hub.subscribe("t_001")
    await opened(sub)
    event_id = await hub.push_packet("t_001")
    event = await next_event(sub)
    assert (event["event"], event["id"]) == ("stream_packet", event_id)
    await hub.close()


async def test_refresh_pushes_a_fresh_packet_to_watched_rooms_only():
    builder = PacketBuilder()
    hub = make_hub(builder, packet_cache_ms=60_000)
    sub = hub.subscribe("t_001")
    await opened(sub)
    hub.subscribe("t_002").end("disconnected")  # a room with state but no viewers
    builds = len(builder.calls)
    hub.refresh()
    event = await next_event(sub)
    assert event["event"] == "stream_packet" and event["data"]["build"] == builds + 1, "the cache was invalidated"
    await asyncio.sleep(0.02)
    assert [room for room, _ in builder.calls[builds:]] == ["t_001"]
    await hub.close()


async def test_refreshes_during_a_push_coalesce_into_one_more_build():
    builder = PacketBuilder()
    hub = make_hub(builder)
    sub = hub.subscribe("t_001")
    await opened(sub)
    builds = len(builder.calls)
    builder.gate = asyncio.Event()
    hub.refresh("t_001")
    await asyncio.sleep(0.01)  # the push is building, held by the gate
    for _ in range(3):
        hub.refresh("t_001")
    builder.gate.set()
    first, second = await next_event(sub), await next_event(sub)
    assert [first["event"], second["event"]] == ["stream_packet", "stream_packet"]
    await asyncio.sleep(0.05)
    assert len(builder.calls) == builds + 2
    assert hub.stats("t_001")["events_published"] == 2
    await hub.close()


async def test_close_cancels_a_pending_push():
    builder = PacketBuilder()
    hub = make_hub(builder)
    sub = hub.subscribe("t_001")
    await opened(sub)
    builder.gate = asyncio.Event()
    hub.refresh("t_001")
    await asyncio.sleep(0.01)
    await hub.close()
    assert [chunk async for chunk in sub] == [b'event: bye\ndata: {"reason":"server_shutdown","reconnect":true}\n\n']
    hub.refresh("t_001")  # after close: nothing scheduled, no error


async def test_close_ends_every_stream_and_refuses_new_ones():
    builder = PacketBuilder()
    hub = make_hub(builder, packet_interval_ms=20)
    subs = [hub.subscribe(room) for room in ("t_001", "t_001", "t_002")]
    for sub in subs:
        await opened(sub)
    await hub.close()
    for sub in subs:
        rest = [chunk async for chunk in sub]
        assert rest == [b'event: bye\ndata: {"reason":"server_shutdown","reconnect":true}\n\n']
    with pytest.raises(StreamClosed):
        hub.subscribe("t_001")
    totals = hub.stats()
    assert {k: totals[k] for k in ("rooms", "subscribers", "max_subscribers", "closed")} == {
        "rooms": 2, "subscribers": 0, "max_subscribers": 1000, "closed": True}
    assert totals["builds_running"] == 0 and totals["max_builds_running"] == 1
    calls = len(builder.calls)
    await asyncio.sleep(0.06)
    assert len(builder.calls) == calls, "no timer survives close()"


async def test_close_during_an_initial_build():
    builder = PacketBuilder()
    builder.gate = asyncio.Event()
    hub = make_hub(builder)
    sub = hub.subscribe("t_001")
    assert await next_event(sub) == {"comment": "connected"}
    pending = asyncio.create_task(anext(sub))
    await asyncio.sleep(0.01)
    await hub.close()
    assert await asyncio.wait_for(pending, 1) == b'event: bye\ndata: {"reason":"server_shutdown","reconnect":true}\n\n'


async def test_from_settings_uses_the_room_events_settings():
    settings = Settings.from_env({"ROOM_EVENTS_BUFFER_SIZE": "50", "ROOM_EVENTS_KEEPALIVE_MS": "7000",
                                  "ROOM_EVENTS_STREAM_PACKET_INTERVAL_MS": "3000",
                                  "ROOM_EVENTS_BUFFER_TTL_MS": "9000", "SSE_MAX_STREAM_MS": "120000"}, env_files=False)
    hub = RoomHub.from_settings(settings, build_packet=PacketBuilder(), max_subscribers=7)
    assert (hub.buffer_size, hub.keepalive_ms, hub.packet_interval_ms, hub.buffer_ttl_ms, hub.max_subscribers,
            hub.max_stream_ms) == (50, 7000, 3000, 9000, 7, 120000)
    await hub.close()
