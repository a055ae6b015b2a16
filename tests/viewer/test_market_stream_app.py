"""GET /api/market/stream (SSE) against the real app: ready, latest bars as they change, bounded input."""

from __future__ import annotations

import pytest

from tests.viewer.helpers import live_app, make_settings, next_of, room_stream, wait_for

pytestmark = pytest.mark.anyio


async def test_ready_then_the_latest_bar_of_each_symbol_as_replay_advances(root):
    settings = make_settings(root, MARKET_STREAM_POLL_MS="300")
    async with live_app(settings) as live:
        await live.control("/api/replay/runtime/control", {"action": "pause"})
        path = "/api/market/stream?symbols=600519.SH,601318.sh,AAPL&interval=1m&limit=500&source=mock"
        async with room_stream(live.client, path) as (response, events):
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            ready = await anext(events)
            assert ready == {"event": "ready", "data": {"ok": True, "symbols": ["600519.SH", "601318.SH", "AAPL"],
                                                       "interval": "1m"}}
            first = (await next_of(events, "frames"))["data"]
            assert first["schema_version"] == "market.frames.v1" and first["market"] == "CN-A"
            assert sorted(f["instrument"]["symbol"] for f in first["frames"]) == ["600519.SH", "601318.SH"]
            assert all(f["mode"] != "mock" for f in first["frames"]), "source=mock is not honoured"
            starts = {f["instrument"]["symbol"]: f["window"]["start_ts_ms"] for f in first["frames"]}

            await live.control("/api/replay/runtime/control", {"action": "step", "bars": 1})
            moved = (await next_of(events, "frames"))["data"]["frames"]
            assert sorted(f["instrument"]["symbol"] for f in moved) == sorted(starts)
            assert all(f["window"]["start_ts_ms"] > starts[f["instrument"]["symbol"]] for f in moved)

            async with room_stream(live.client, "/api/market/stream?symbols=600519.SH,601318.SH,AAPL") as (_, other):
                assert (await anext(other))["event"] == "ready"
                # A late viewer of an already-watched set gets its latest bars at once, from the same poller.
                greeting = await anext(other)
                assert greeting["event"] == "frames" and len(greeting["data"]["frames"]) == 2
                stats = live.ctx.extra["viewer_streams"].market.stats()
                assert stats["subscribers"] == 2 and stats["pollers_started"] == 1
        market = live.ctx.extra["viewer_streams"].market
        await wait_for(lambda: market.stats()["subscribers"] == 0)
        assert market.stats()["poller_running"] is False


@pytest.mark.parametrize(
    "query, code",
    [
        ("symbols=" + ",".join(f"60{n:04d}.SH" for n in range(21)), "too_many_symbols"),
        ("symbols=600519.SH,<script>", "invalid_symbol"),
        ("symbols=600519.SH&interval=2m", "invalid_interval"),
    ],
)
async def test_bad_requests_are_json_400s(root, query, code):
    async with live_app(make_settings(root)) as live:
        resp = await live.client.get(f"/api/market/stream?{query}")
    assert resp.status_code == 400
    assert resp.json()["error"] == code
    assert live.ctx.extra["viewer_streams"].market.stats()["pollers_started"] == 0
