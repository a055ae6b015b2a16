from __future__ import annotations

import json
import os

import pytest

from runtime_api.market.live_files import LiveFileFrameProvider, LiveJsonFileProvider, payload_timestamp_ms

FRAME_STATUS_KEYS = {
    "file", "refresh_ms", "stale_after_ms", "mode", "provider", "symbols_1m", "frame_count", "last_load_ts_ms",
    "last_attempt_ts_ms", "last_mtime_ms", "last_error", "last_error_ts_ms", "stale", "stale_reason",
    "latest_ts_ms", "data_age_ms",
}
JSON_STATUS_KEYS = {
    "file", "refresh_ms", "stale_after_ms", "last_load_ts_ms", "last_attempt_ts_ms", "last_mtime_ms", "last_error",
    "last_error_ts_ms", "stale", "has_last_good", "latest_ts_ms", "data_age_ms",
}


@pytest.fixture
def live_path(tmp_path):
    return tmp_path / "data/live/onlytrade/frames.1m.json"


@pytest.fixture
def recent_bars(bar, clock):
    """Two 1m bars of 600519.SH, the newest ending at the clock's now."""

    def make(closes=(10.0, 11.0), symbol="600519.SH"):
        n = len(closes)
        return [bar(symbol, clock() - (n - i) * 60_000, c) for i, c in enumerate(closes)]

    return make


def provider_for(path, clock, **kw):
    kw.setdefault("refresh_ms", 10_000)
    kw.setdefault("stale_ms", 180_000)
    return LiveFileFrameProvider(path, now_ms=clock, display_path="data/live/onlytrade/frames.1m.json", **kw)


def test_serves_frames_after_an_atomic_rewrite_and_forced_refresh(live_path, clock, write, batch, recent_bars):
    write(live_path, batch(recent_bars((9.0,))))
    provider = provider_for(live_path, clock)
    assert provider.refresh() is True
    write(live_path, batch(recent_bars((10.0, 11.0))))
    assert provider.refresh(force=True) is True
    frames = provider.get_frames("600519.SH", "1m", 800)
    assert [f["bar"]["close"] for f in frames] == [10.0, 11.0]
    assert provider.symbols("1m") == ["600519.SH"]
    status = provider.status()
    assert set(status) == FRAME_STATUS_KEYS
    assert (status["frame_count"], status["mode"], status["provider"]) == (2, "real", "test-feed")
    assert status["file"] == "data/live/onlytrade/frames.1m.json"
    assert status["latest_ts_ms"] == clock() and status["data_age_ms"] == 0
    assert not status["stale"] and status["stale_reason"] is None


def test_invalid_json_keeps_the_last_good_frames(live_path, clock, write, batch, recent_bars, tmp_path):
    write(live_path, batch(recent_bars()))
    provider = provider_for(live_path, clock)
    provider.refresh()
    write(live_path, None, raw=b'{"frames": [')
    clock.advance(500)
    provider.refresh(force=True)
    status = provider.status()
    assert status["last_error"].startswith("invalid_json: ")
    assert status["last_error_ts_ms"] == clock()
    assert status["frame_count"] == 2
    assert [f["bar"]["close"] for f in provider.get_frames("600519.SH")] == [10.0, 11.0]
    assert str(tmp_path) not in json.dumps(status)

    write(live_path, batch(recent_bars((12.0,))))
    provider.refresh(force=True)
    assert provider.status()["last_error"] is None and provider.status()["last_error_ts_ms"] is None


def test_effective_stale_window_is_six_minimum_refreshes(live_path, clock, write, batch, recent_bars):
    write(live_path, batch(recent_bars()))
    provider = provider_for(live_path, clock, refresh_ms=10, stale_ms=30)
    provider.refresh()
    status = provider.status()
    assert (status["refresh_ms"], status["stale_after_ms"]) == (250, 1500)
    assert status["stale"] is False
    clock.advance(1600)
    assert provider.status()["stale"] is True


def test_rereads_only_when_due_and_changed(live_path, clock, write, batch, recent_bars):
    write(live_path, batch(recent_bars((1.0,))))
    provider = provider_for(live_path, clock, refresh_ms=1000)
    provider.refresh()
    loaded_at = provider.status()["last_load_ts_ms"]

    write(live_path, batch(recent_bars((2.0,))))
    clock.advance(999)
    assert provider.get_frames("600519.SH")[-1]["bar"]["close"] == 1.0  # not due yet

    clock.advance(1)
    assert provider.get_frames("600519.SH")[-1]["bar"]["close"] == 2.0  # due and changed
    assert provider.status()["last_load_ts_ms"] == loaded_at + 1000

    clock.advance(5000)
    assert provider.refresh() is False  # due but unchanged: not re-read
    assert provider.status()["last_load_ts_ms"] == loaded_at + 1000
    assert provider.status()["last_attempt_ts_ms"] == clock()


def test_detects_a_rewrite_that_keeps_the_mtime(live_path, clock, write, batch, recent_bars):
    write(live_path, batch(recent_bars((1.0,))))
    stamp = os.stat(live_path).st_mtime_ns
    provider = provider_for(live_path, clock, refresh_ms=250)
    provider.refresh()
    write(live_path, batch(recent_bars((2.0,))))
    os.utime(live_path, ns=(stamp, stamp))
    clock.advance(250)
    assert provider.refresh() is True
    assert provider.get_frames("600519.SH")[-1]["bar"]["close"] == 2.0


def test_fresh_file_with_old_bars_is_stale(live_path, clock, write, batch, bar):
    """W20: a collector rewriting yesterday's bars keeps the mtime fresh, not the data."""
    old = [bar("600519.SH", clock() - 3_600_000, 10.0)]
    write(live_path, batch(old))
    provider = provider_for(live_path, clock)
    provider.refresh()
    status = provider.status()
    assert status["stale"] is True and status["stale_reason"] == "data_too_old"
    assert status["data_age_ms"] == 3_600_000 - 60_000


def test_file_not_updated_is_stale(live_path, clock, write, batch, recent_bars):
    write(live_path, batch(recent_bars()))
    provider = provider_for(live_path, clock, refresh_ms=10_000, stale_ms=10_000)
    provider.refresh()
    clock.advance(60_001)
    assert provider.status()["stale_reason"] == "file_not_updated"


def test_empty_file_is_stale(live_path, clock, write, batch):
    write(live_path, batch([]))
    provider = provider_for(live_path, clock)
    provider.refresh()
    assert provider.status()["stale_reason"] == "no_frames"


@pytest.mark.parametrize(
    "content, error",
    [
        (None, "file_not_found"),
        (b"[1, 2", "invalid_json: "),
        (b'{"frames": "nope"}', "invalid_payload"),
        (b'"text"', "invalid_payload"),
    ],
)
def test_bad_files_give_a_pathless_error(live_path, clock, tmp_path, content, error):
    if content is not None:
        live_path.parent.mkdir(parents=True)
        live_path.write_bytes(content)
    provider = provider_for(live_path, clock)
    assert provider.refresh() is False
    status = provider.status()
    assert status["last_error"].startswith(error)
    assert status["stale"] and status["stale_reason"] == "never_loaded"
    assert status["frame_count"] == 0 and status["symbols_1m"] == [] and status["latest_ts_ms"] is None
    assert str(tmp_path) not in json.dumps(status)
    assert provider.get_frames("600519.SH") == []


def test_malformed_bars_never_escape_refresh(live_path, clock, write, batch, recent_bars):
    good = recent_bars()
    weird = dict(good[0], interval=["1m"])  # unhashable interval: dropped, not a crash
    write(live_path, batch([weird, *good]))
    provider = provider_for(live_path, clock)
    assert provider.refresh() is True
    assert provider.status()["frame_count"] == 2


def test_get_frames_limit_is_clamped(live_path, clock, write, batch, recent_bars):
    write(live_path, batch(recent_bars((1.0, 2.0, 3.0))))
    provider = provider_for(live_path, clock)
    assert [f["bar"]["close"] for f in provider.get_frames("600519.SH", limit=0)] == [3.0]
    assert len(provider.get_frames("600519.SH", limit=10**6)) == 3
    assert len(provider.get_frames("600519.SH", limit=None)) == 3


def test_display_path_defaults_to_the_file_name(live_path, clock):
    assert LiveFileFrameProvider(live_path, now_ms=clock).status()["file"] == "frames.1m.json"


# ---- JSON side files -------------------------------------------------------------------------


@pytest.fixture
def json_path(tmp_path):
    return tmp_path / "market_overview.cn-a.json"


def json_provider(path, clock, **kw):
    kw.setdefault("refresh_ms", 250)
    kw.setdefault("stale_ms", 180_000)
    return LiveJsonFileProvider(path, now_ms=clock, display_path="data/live/onlytrade/market_overview.cn-a.json", **kw)


def test_json_reloads_on_change(json_path, clock, write):
    write(json_path, {"summary": "one"})
    provider = json_provider(json_path, clock)
    assert provider.payload() == {"summary": "one"}
    write(json_path, {"summary": "two"})
    clock.advance(250)
    assert provider.payload() == {"summary": "two"}
    status = provider.status()
    assert set(status) == JSON_STATUS_KEYS
    assert status["has_last_good"] and not status["stale"]
    assert status["file"] == "data/live/onlytrade/market_overview.cn-a.json"


def test_json_keeps_the_last_good_payload_on_bad_json(json_path, clock, write, tmp_path):
    write(json_path, {"summary": "good"})
    provider = json_provider(json_path, clock)
    provider.payload()
    write(json_path, None, raw=b"{bad")
    assert provider.payload(force=True) == {"summary": "good"}
    status = provider.status()
    assert status["has_last_good"] is True
    assert status["last_error"].startswith("invalid_json: ")
    assert str(tmp_path) not in json.dumps(status)


def test_json_payload_must_be_an_object(json_path, clock, write):
    write(json_path, [1, 2, 3])
    provider = json_provider(json_path, clock)
    assert provider.payload() is None
    assert provider.status()["last_error"] == "invalid_payload: expected a JSON object"
    assert provider.status()["has_last_good"] is False


def test_json_stale_window_is_at_least_the_minimum_refresh(json_path, clock, write):
    write(json_path, {"summary": "x"})
    provider = json_provider(json_path, clock, refresh_ms=10, stale_ms=10)
    provider.payload()
    assert provider.status()["stale_after_ms"] == 250
    assert provider.status()["stale"] is False
    clock.advance(320)
    assert provider.status()["stale"] is True


def test_json_missing_file(json_path, clock):
    provider = json_provider(json_path, clock)
    assert provider.payload() is None
    status = provider.status()
    assert status["last_error"] == "file_not_found" and status["stale"] and not status["has_last_good"]


def test_json_reports_the_data_timestamp(json_path, clock, write):
    write(json_path, {"generated_at": "2026-02-13T01:55:00Z", "summary": "x"})  # 09:55 in Shanghai
    provider = json_provider(json_path, clock)
    provider.payload()
    status = provider.status()
    assert status["latest_ts_ms"] == clock() - 300_000
    assert status["data_age_ms"] == 300_000


@pytest.mark.parametrize(
    "payload, expected",
    [
        ({"ts_ms": 1770947700000}, 1770947700000),
        ({"as_of": 1770947700}, 1770947700000),  # epoch seconds
        ({"as_of": "1770947700000"}, 1770947700000),
        ({"generated_at": "2026-02-13T09:55:00+08:00"}, 1770947700000),
        ({"generated_at": "2026-02-13T01:55:00"}, 1770947700000),  # naive means UTC
        ({"as_of_ts_ms": 1770947700000, "generated_at": "2020-01-01T00:00:00Z"}, 1770947700000),
        ({"generated_at": "yesterday"}, None),
        ({"ts_ms": True}, None),
        ({}, None),
    ],
)
def test_payload_timestamp(payload, expected):
    assert payload_timestamp_ms(payload) == expected
