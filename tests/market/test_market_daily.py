from __future__ import annotations

import json

import pytest

from runtime_api.market.daily import DailyHistory


@pytest.fixture
def history_path(root):
    return root / "data/replay/cn-a/history/frames.1d.111.json"


@pytest.fixture
def history(history_path, clock):
    return DailyHistory(history_path, now_ms=clock, display_path="data/replay/cn-a/history/frames.1d.111.json")


def test_loads_the_shipped_history(history):
    assert history.symbols() == [
        "000858.SZ", "002050.SZ", "002131.SZ", "002195.SZ", "002342.SZ", "300058.SZ", "300059.SZ",
        "300750.SZ", "600036.SH", "600089.SH", "600519.SH", "600986.SH", "601318.SH", "601899.SH",
    ]
    frames = history.frames("600519.SH", 20)
    assert len(frames) == 20
    assert frames[-1]["window"]["trading_day"] == "2026-02-12"
    assert all(f["interval"] == "1d" for f in frames)
    status = history.status()
    assert (status["frame_count"], status["provider"], status["mode"]) == (1554, "public-github-datasets", "real")
    assert status["file"] == "data/replay/cn-a/history/frames.1d.111.json"
    assert status["last_error"] is None


def test_until_hides_bars_that_have_not_closed(history, at):
    # At 10:00 on 2026-02-10 the day's own bar (ending 23:59:59 local) is still in the future.
    frames = history.frames("600519.SH", 800, until_ts_ms=at("2026-02-10 10:00:00"))
    assert frames[-1]["window"]["trading_day"] == "2026-02-09"
    assert all(f["window"]["end_ts_ms"] <= at("2026-02-10 10:00:00") for f in frames)
    assert history.frames("600519.SH", 800, until_ts_ms=at("2025-01-01 00:00:00")) == []


def test_hot_reloads_when_the_file_changes(history, history_path, clock, write, bar, at):
    payload = json.loads(history_path.read_text())
    payload["frames"].append(bar("600519.SH", at("2026-02-12 00:00:00"), 1500.0, interval="1d"))
    write(history_path, payload)
    clock.advance(1000)
    assert history.frames("600519.SH", 1)[-1]["window"]["trading_day"] == "2026-02-12"
    assert history.status()["last_load_ts_ms"] == clock()


def test_bad_reload_keeps_the_last_good_data(history, history_path, clock, write, root):
    write(history_path, None, raw=b"{truncated")
    clock.advance(1000)
    assert len(history.frames("600519.SH", 800)) == 111
    status = history.status()
    assert status["last_error"].startswith("invalid_json")
    assert str(root) not in json.dumps(status)


def test_missing_file_is_empty_with_an_error(tmp_path, clock):
    history = DailyHistory(tmp_path / "frames.1d.111.json", now_ms=clock)
    assert history.frames("600519.SH", 10) == []
    assert history.status()["last_error"] == "file_not_found"
    assert history.status()["file"] == "frames.1d.111.json"
