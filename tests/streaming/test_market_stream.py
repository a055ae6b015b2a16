"""MarketStream: one shared poller, frames only on a new bar, over real HTTP too."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from runtime_api.web.responses import fail
from runtime_api.streaming import MarketStream, TooManySubscribers, parse_symbols, sse_response
from tests.streaming.helpers import next_event, serve, sse_events

pytestmark = pytest.mark.anyio


def bar(symbol: str, start: int, close: float = 10.0, provider: str = "akshare") -> dict:
    return {
        "schema_version": "market.bar.v1", "market": "CN-A", "mode": "real", "provider": provider,
        "instrument": {"symbol": symbol}, "interval": "1m",
        "window": {"start_ts_ms": start, "end_ts_ms": start + 60_000},
        "bar": {"close": close},
    }


class Latest:
    """A get_latest callback over a mutable table, counting calls."""

    def __init__(self) -> None:
        self.bars: dict[str, dict] = {}
        self.calls: list[tuple[tuple[str, ...], str]] = []
        self.fail = False

    def __call__(self, symbols: list[str], interval: str) -> dict[str, dict | None]:
        self.calls.append((tuple(symbols), interval))
        if self.fail:
            raise OSError("live file unreadable")
        return {s: self.bars.get(s) for s in symbols}


async def test_ready_then_frames_only_when_a_bar_is_new():
    latest = Latest()
    latest.bars = {"600519.SH": bar("600519.SH", 0), "000001.SZ": bar("000001.SZ", 0)}
    stream = MarketStream(latest, poll_ms=20)
    viewer = stream.subscribe(["600519.sh", "000001.SZ", "600519.SH"])
    assert await next_event(viewer) == {"event": "ready", "data": {
        "ok": True, "symbols": ["600519.SH", "000001.SZ"], "interval": "1m"}}
    first = await next_event(viewer)
    assert first["event"] == "frames" and "id" not in first
    assert [f["instrument"]["symbol"] for f in first["data"]["frames"]] == ["600519.SH", "000001.SZ"]
    assert {k: first["data"][k] for k in ("schema_version", "market", "mode", "provider")} == {
        "schema_version": "market.frames.v1", "market": "CN-A", "mode": "real", "provider": "akshare"}

    polls = stream.polls
    latest.bars["600519.SH"] = bar("600519.SH", 0, close=11.0)  # same bar updated in place
    await asyncio.sleep(0.1)
    assert stream.polls > polls

    latest.bars["000001.SZ"] = bar("000001.SZ", 60_000, provider="tdx")
    update = await next_event(viewer, timeout=0.5)
    assert update["event"] == "frames", "no frames event came in between"
    assert [f["instrument"]["symbol"] for f in update["data"]["frames"]] == ["000001.SZ"]
    assert update["data"]["provider"] == "tdx"
    await stream.close()


async def test_one_poller_serves_every_connection_and_stops_when_nobody_listens():
    latest = Latest()
    latest.bars = {"600519.SH": bar("600519.SH", 0), "000001.SZ": bar("000001.SZ", 0)}
    stream = MarketStream(latest, poll_ms=20)
    viewers = [stream.subscribe(["600519.SH"]) for _ in range(30)] + [stream.subscribe(["000001.SZ", "600519.SH"])]
    for viewer in viewers:
        await next_event(viewer)
        assert (await next_event(viewer))["event"] == "frames"
    assert stream.stats()["channels"] == 2
    await asyncio.sleep(0.1)
    assert stream.pollers_started == 1
    assert len(latest.calls) == stream.polls, "one lookup per poll, whatever the audience"
    assert set(latest.calls) == {(("000001.SZ", "600519.SH"), "1m")}

    late = stream.subscribe(["600519.SH"])
    assert (await next_event(late))["event"] == "ready"
    greeting = await next_event(late, timeout=0.05)
    assert greeting["event"] == "frames", "a viewer joining a channel gets the latest bars at once"

    for viewer in [*viewers, late]:
        await viewer.aclose()
    stats = stream.stats()
    assert (stats["subscribers"], stats["channels"], stats["poller_running"]) == (0, 0, False)
    calls = len(latest.calls)
    await asyncio.sleep(0.08)
    assert len(latest.calls) == calls
    await stream.close()


async def test_symbol_interval_and_viewer_bounds():
    stream = MarketStream(Latest(), max_symbols=3, max_subscribers=1)
    with pytest.raises(ValueError, match="too_many_symbols"):
        stream.subscribe(["A1", "A2", "A3", "A4"])
    with pytest.raises(ValueError, match="invalid_symbol"):
        stream.subscribe(["<script>"])
    with pytest.raises(ValueError, match="invalid_interval"):
        stream.subscribe(["600519.SH"], "7m")
    stream.subscribe(["600519.SH"])
    with pytest.raises(TooManySubscribers):
        stream.subscribe(["600519.SH"])
    await stream.close()


def test_parse_symbols():
    assert parse_symbols(" 600519.sh, ,000001.SZ,600519.SH") == ["600519.SH", "000001.SZ"]
    assert parse_symbols(None) == ["600519.SH"]
    assert parse_symbols("") == ["600519.SH"]


async def test_a_failing_source_sends_one_error_per_streak():
    latest = Latest()
    latest.fail = True
    stream = MarketStream(latest, poll_ms=10)
    viewer = stream.subscribe(["600519.SH"])
    await next_event(viewer)
    assert await next_event(viewer) == {"event": "error", "data": {"error": "stream_emit_failed"}}
    await asyncio.sleep(0.06)
    latest.fail = False
    latest.bars = {"600519.SH": bar("600519.SH", 0)}
    assert (await next_event(viewer))["event"] == "frames"
    assert stream.poll_failures >= 3
    await stream.close()


async def test_async_source_and_intervals_are_polled_separately():
    calls = []

    async def get_latest(symbols, interval):
        calls.append(interval)
        return {s: bar(s, 0) for s in symbols}

    stream = MarketStream(get_latest, poll_ms=10)
    one = stream.subscribe(["600519.SH"], "1m")
    five = stream.subscribe(["600519.SH"], "5m")
    for viewer in (one, five):
        await next_event(viewer)
        assert (await next_event(viewer))["event"] == "frames"
    assert set(calls) == {"1m", "5m"}
    await stream.close()


async def test_market_stream_over_http_and_close():
    latest = Latest()
    latest.bars = {"600519.SH": bar("600519.SH", 0)}
    stream = MarketStream(latest, poll_ms=20)

    async def get_market_stream(request: Request):
        try:
            viewer = stream.subscribe(parse_symbols(request.query_params.get("symbols")),
                                      request.query_params.get("interval", "1m"))
        except ValueError as exc:
            return fail(400, str(exc))
        return sse_response(viewer)

    app = Starlette(routes=[Route("/api/market/stream", get_market_stream)])
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        too_many = ",".join(f"60{n:04d}.SH" for n in range(21))
        refused = await client.get(f"/api/market/stream?symbols={too_many}")
        assert (refused.status_code, refused.json()["error"]) == (400, "too_many_symbols")

        async with client.stream("GET", "/api/market/stream?symbols=600519.SH") as response:
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            events = sse_events(response.aiter_lines())
            assert (await anext(events))["event"] == "ready"
            assert (await anext(events))["event"] == "frames"
            latest.bars["600519.SH"] = bar("600519.SH", 60_000)
            assert (await anext(events))["data"]["frames"][0]["window"]["start_ts_ms"] == 60_000
            await stream.close()
            async with asyncio.timeout(2):
                rest = [event async for event in events]
            assert rest == [{"event": "bye", "data": {"reason": "server_shutdown", "reconnect": True}}]
