"""LIVE_FILE_WATCH: a replaced live file is served at once; with watching off the rate-limited polling decides."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from api.conftest import data_of, make_settings, open_api
from api.live_files import write_live_files
from runtime_api.state.storage import write_json_atomic

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def add_bar(root) -> int:
    """Replace the frames file (as the collector does: temp file + os.replace) with one bar more."""
    path = root / "data/live/onlytrade/frames.1m.json"
    payload = orjson.loads(path.read_bytes())
    last = max((f for f in payload["frames"] if f["instrument"]["symbol"] == "600519.SH"), key=lambda f: f["window"]["end_ts_ms"])
    bar = orjson.loads(orjson.dumps(last))
    for key in ("start_ts_ms", "end_ts_ms"):
        bar["window"][key] += 60_000
    bar["event_ts_ms"] += 60_000
    bar["bar"]["close"] = round(bar["bar"]["close"] + 1.23, 2)
    payload["frames"].append(bar)
    write_json_atomic(path, payload, pretty=False)
    return bar["window"]["end_ts_ms"]


async def newest_end(api) -> int:
    frames = data_of(await api.get("/api/market/frames?symbol=600519.SH&interval=1m&limit=1"))["frames"]
    return frames[-1]["window"]["end_ts_ms"]


async def open_live(root, watch: str):
    write_live_files(root, age_ms=30_000)
    return await open_api(make_settings(root, RUNTIME_DATA_MODE="live_file", LIVE_FILE_REFRESH_MS="60000", LIVE_FILE_WATCH=watch))


async def test_a_replaced_live_file_is_served_at_once_when_watched(root):
    api, lifespan = await open_live(root, "true")
    try:
        for _ in range(100):  # the watch starts with the app
            if (data_of(await api.get("/api/agent/runtime/status"))["live_file_watch"] or {}).get("active"):
                break
            await asyncio.sleep(0.02)
        end = add_bar(root)
        started = time.monotonic()
        while await newest_end(api) != end and time.monotonic() - started < 5:
            await asyncio.sleep(0.01)
        assert await newest_end(api) == end, "the new bar was not picked up"
        watch = data_of(await api.get("/api/agent/runtime/status"))["live_file_watch"]
        assert watch["active"] is True and watch["reloads"] >= 1 and watch["error"] is None
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_without_watching_the_refresh_gap_decides(root):
    api, lifespan = await open_live(root, "false")
    try:
        before = await newest_end(api)
        end = add_bar(root)
        await asyncio.sleep(1.0)
        assert await newest_end(api) == before != end  # LIVE_FILE_REFRESH_MS=60000 has not passed
        assert data_of(await api.get("/api/agent/runtime/status"))["live_file_watch"] == {"enabled": False}
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)
