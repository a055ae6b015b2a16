"""The two slow reads: frames encoded once per key and cursor; the freshness report on its own schedule."""

from __future__ import annotations

import asyncio

import pytest
from api.conftest import data_of, make_settings, open_api
from api.live_files import write_live_files

from runtime_api.market.bars import to_kline
from runtime_api.web.read_caches import PIECES_KEY, BarPieces, schedule_of
from runtime_api.web.responses import ok_bytes, to_json

pytestmark = pytest.mark.anyio

FRAMES = {"symbol": "600519.SH", "interval": "1m", "limit": "500"}


async def test_frames_are_encoded_once_per_key_and_cursor(api):
    cache = api.ctx.cache
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    misses = cache.misses
    bodies = await asyncio.gather(*(api.get("/api/market/frames", params=FRAMES) for _ in range(20)))
    assert {b.status_code for b in bodies} == {200} and len({b.content for b in bodies}) == 1
    assert cache.misses == misses + 1  # twenty concurrent viewers, one build
    assert (await api.get("/api/market/frames", params={**FRAMES, "limit": "240"})).status_code == 200
    assert (await api.get("/api/klines", params=FRAMES)).status_code == 200
    assert cache.misses == misses + 3  # another limit, another shape: one build each
    before = (await api.get("/api/market/frames", params=FRAMES)).json()["data"]["frames"]
    data_of(await api.control("/api/replay/runtime/control", {"action": "step", "bars": 5}))
    after = (await api.get("/api/market/frames", params=FRAMES)).json()["data"]["frames"]
    assert cache.misses == misses + 4 and after[-1]["window"] != before[-1]["window"]  # the cursor moved: rebuilt


async def test_a_stepped_cursor_reencodes_only_the_new_bars_and_the_body_is_what_a_whole_encode_gives(api):
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    assert (await api.get("/api/market/frames", params=FRAMES)).status_code == 200
    pieces = api.ctx.extra[PIECES_KEY]
    encoded = pieces.encoded
    data_of(await api.control("/api/replay/runtime/control", {"action": "step", "bars": 3}))
    resp = await api.get("/api/market/frames", params=FRAMES, headers={"accept-encoding": "identity"})
    assert pieces.encoded - encoded <= 3  # the window slid: the bars it still shows were reused
    envelope = api.ctx.svc.market.get_frames("600519.SH", "1m", 500)
    assert resp.content == ok_bytes(to_json(envelope))
    klines = await api.get("/api/klines", params=FRAMES, headers={"accept-encoding": "identity"})
    assert klines.content == ok_bytes(to_json([to_kline(bar) for bar in envelope["frames"]]))


def test_bar_pieces_reuse_only_the_same_bar_object():
    pieces = BarPieces()
    bars = [{"ts": n, "bar": {"close": 10.0 + n}} for n in range(5)]
    assert pieces.encode("r", bars) == to_json(bars)
    slid = bars[1:] + [{"ts": 5, "bar": {"close": 15.0}}]
    assert pieces.encode("r", slid) == to_json(slid)
    assert (pieces.reused, pieces.encoded) == (4, 6)
    reloaded = [{"ts": n, "bar": {"close": 99.0}} for n in range(1, 6)]  # equal stamps, new objects, new prices
    assert pieces.encode("r", reloaded) == to_json(reloaded)
    assert pieces.reused == 4  # nothing taken from the previous load
    assert pieces.encode("r", []) == b"[]"
    assert pieces.encode("k", slid, lambda bar: [bar["ts"]]) == to_json([[bar["ts"]] for bar in slid])


def test_bar_pieces_stay_bounded_by_reads():
    pieces = BarPieces()
    bars = [{"ts": 1}]
    for n in range(BarPieces.MAX_READS + 10):
        pieces.encode(("read", n), bars)
    assert len(pieces._reads) <= BarPieces.MAX_READS


async def test_a_failed_build_is_not_cached(api):
    resp = await api.get("/api/market/frames", params={"symbol": "NOT-A-SYMBOL", "interval": "1m"})
    again = await api.get("/api/market/frames", params={"symbol": "NOT-A-SYMBOL", "interval": "1m"})
    assert resp.status_code == again.status_code and resp.status_code < 500


async def test_runtime_status_never_computes_freshness_per_request(root):
    write_live_files(root)
    api, lifespan = await open_api(make_settings(root, RUNTIME_DATA_MODE="live_file", FRESHNESS_REFRESH_MS="60000"))
    try:
        sched = schedule_of(api.ctx)
        first = data_of(await api.get("/api/agent/runtime/status"))["live_data_freshness"]
        await asyncio.sleep(0.5)  # the schedule's first pass has landed
        seq = sched.seq
        assert seq >= 1
        for _ in range(30):
            data_of(await api.get("/api/agent/runtime/status"))
        assert sched.seq == seq  # none per request
        await sched.refresh()  # what the schedule does every FRESHNESS_REFRESH_MS
        await asyncio.sleep(1.1)  # past the status max-age bucket
        later = data_of(await api.get("/api/agent/runtime/status"))["live_data_freshness"]
        assert sched.seq == seq + 1 and later["ts_ms"] > first["ts_ms"]
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_frames_keep_their_etag_through_agent_state_changes_but_not_a_cursor_move(api):
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    first = await api.get("/api/market/frames", params=FRAMES)
    version = api.ctx.state_version()
    data_of(await api.control("/api/agents/t_001/register"))  # agent state moves, the bars do not
    assert api.ctx.state_version() != version
    same = await api.get("/api/market/frames", params=FRAMES)
    assert same.headers["etag"] == first.headers["etag"]
    data_of(await api.control("/api/replay/runtime/control", {"action": "step", "bars": 1}))
    moved = await api.get("/api/market/frames", params=FRAMES)
    assert moved.headers["etag"] != first.headers["etag"]
