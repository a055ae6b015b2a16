from __future__ import annotations

import math

import pytest

from runtime_api.market.bars import FrameIndex, load_frames
from runtime_api.market.replay import ReplayEngine

STATUS_KEYS = {
    "running", "speed", "loop", "completed", "warmup_bars", "cursor_index", "timeline_length", "current_ts_ms",
    "day_count", "day_index", "trading_day", "is_day_start", "is_day_end", "day_bar_index", "day_bar_count",
}


@pytest.fixture
def index(root):
    return FrameIndex(load_frames(root / "data/replay/cn-a"))


@pytest.fixture
def engine(index, clock):
    return ReplayEngine(index, speed=60, warmup_bars=3, loop=True, now_ms=clock)


def test_starts_at_warmup_minus_one(engine, index):
    status = engine.status()
    assert set(status) == STATUS_KEYS
    assert status["cursor_index"] == 2
    assert status["timeline_length"] == 480 == len(index.starts())
    assert status["running"] and not status["completed"]
    assert status["current_ts_ms"] == index.starts()[2]


def test_one_second_at_60x_is_exactly_one_bar(engine, clock):
    clock.advance(1000)
    assert engine.tick() == 1
    assert engine.status()["cursor_index"] == 3
    visible = engine.visible_frames("600519.SH", 800)
    assert len(visible) == 4
    assert visible[-1]["window"]["start_ts_ms"] == engine.current_ts_ms()
    assert engine.clock_ms() == engine.current_ts_ms() + 60_000


def test_paused_ticks_do_nothing_and_speed_scales(engine, clock):
    engine.pause()
    clock.advance(5000)
    assert engine.tick() == 0
    assert engine.status()["cursor_index"] == 2
    engine.resume()
    engine.set_speed(120)
    clock.advance(1000)
    assert engine.tick() == 2
    assert engine.status()["cursor_index"] == 4
    engine.pause()
    assert engine.status()["running"] is False


def test_paused_time_is_not_replayed_on_resume(engine, clock):
    engine.pause()
    clock.advance(60_000)
    engine.resume()
    clock.advance(1000)
    assert engine.tick() == 1


def test_fractional_bars_carry_over(engine, clock):
    clock.advance(600)
    assert engine.tick() == 0
    clock.advance(600)
    assert engine.tick() == 1
    clock.advance(800)
    assert engine.tick() == 1  # 0.2 carried + 0.8


def test_step_works_while_paused_and_is_clamped(engine):
    engine.pause()
    assert engine.step(1) == 1
    assert engine.status()["cursor_index"] == 3
    assert engine.step(0) == 1  # at least one bar
    assert engine.step(500) == 120  # at most 120
    assert engine.status()["cursor_index"] == 124
    assert engine.status()["running"] is False


def test_day_boundaries_across_the_two_shipped_days(engine):
    engine.set_cursor(0)
    first = engine.status()
    assert (first["day_count"], first["day_index"], first["trading_day"]) == (2, 1, "2026-02-10")
    assert first["is_day_start"] and not first["is_day_end"]
    assert (first["day_bar_index"], first["day_bar_count"]) == (1, 240)

    engine.set_cursor(239)
    end = engine.status()
    assert end["is_day_end"] and not end["is_day_start"]
    assert (end["day_index"], end["day_bar_index"]) == (1, 240)

    engine.step()
    start = engine.status()
    assert (start["day_index"], start["trading_day"], start["day_bar_index"]) == (2, "2026-02-13", 1)
    assert start["is_day_start"] and not start["is_day_end"]


def test_loop_off_stops_at_the_end_and_set_loop_clears_completed(engine, clock):
    engine.set_loop(False)
    engine.set_cursor(477)
    clock.advance(10_000)  # 10 bars' worth, only 2 left
    assert engine.tick() == 2
    status = engine.status()
    assert status["completed"] and not status["running"]
    assert status["cursor_index"] == 479 and status["is_day_end"]
    engine.set_loop(True)
    assert engine.status()["completed"] is False


def test_loop_on_wraps_to_the_start(engine):
    engine.set_cursor(479)
    assert engine.step() == 1
    assert engine.status()["cursor_index"] == 0
    assert not engine.status()["completed"]


def test_moving_the_cursor_back_clears_completed(engine):
    engine.set_loop(False)
    engine.set_cursor(479)
    engine.step()
    assert engine.status()["completed"]
    engine.set_cursor(10)
    assert not engine.status()["completed"]


@pytest.mark.parametrize("value, expected", [(0, 0.1), (0.05, 0.1), (5000, 1000.0), (90, 90.0), ("30", 30.0)])
def test_set_speed_clamps(engine, value, expected):
    engine.set_speed(value)
    assert engine.status()["speed"] == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, "fast"])
def test_set_speed_refuses_non_numbers(engine, value):
    with pytest.raises(ValueError):
        engine.set_speed(value)


@pytest.mark.parametrize("value, expected", [(-5, 0), (10.7, 10), (10**9, 479), ("42", 42)])
def test_set_cursor_floors_and_clamps(engine, value, expected):
    engine.set_cursor(value)
    assert engine.status()["cursor_index"] == expected


def test_set_cursor_resets_the_carry(engine, clock):
    clock.advance(900)
    engine.tick()
    engine.set_cursor(5)
    clock.advance(200)
    assert engine.tick() == 0


def test_visible_frames_never_show_the_future(engine, index):
    engine.set_cursor(300)
    now = engine.current_ts_ms()
    for symbol in index.symbols():
        frames = engine.visible_frames(symbol, 2000)
        assert all(f["window"]["start_ts_ms"] <= now for f in frames)
        later = [f for f in index.frames(symbol) if f["window"]["start_ts_ms"] > now]
        assert len(frames) + len(later) == len(index.frames(symbol))
    assert len(engine.visible_frames("600519.SH", 5)) == 5
    assert engine.visible_frames("600519.SH", None) == engine.visible_frames("600519.SH", 2000)


def test_warmup_beyond_the_timeline_is_clamped(index, clock):
    assert ReplayEngine(index, warmup_bars=10_000, now_ms=clock).status()["cursor_index"] == 479


def test_empty_timeline(clock):
    engine = ReplayEngine(FrameIndex(), speed=60, warmup_bars=120, loop=True, now_ms=clock)
    engine.resume()
    clock.advance(5000)
    assert engine.tick() == 0 and engine.step(5) == 0
    status = engine.status()
    assert set(status) == STATUS_KEYS
    assert status["running"] is False and status["cursor_index"] == -1 and status["current_ts_ms"] is None
    assert status["timeline_length"] == 0 and status["day_count"] == 0
    assert engine.clock_ms() is None and engine.visible_frames("600519.SH") == []


def test_every_wrap_starts_a_new_session_of_the_same_days():
    from runtime_api.market.bars import FrameIndex
    from runtime_api.market.replay import ReplayEngine

    t0 = 1_770_000_000_000
    bars = [{"instrument": {"symbol": "A"}, "interval": "1m",
             "window": {"start_ts_ms": t0 + i * 60_000, "end_ts_ms": t0 + (i + 1) * 60_000, "trading_day": "d1"}} for i in range(3)]
    replay = ReplayEngine(FrameIndex(bars), warmup_bars=1, now_ms=lambda: 0)
    assert (replay.session(), replay.loops) == ("d1", 0)
    replay.step(3)  # 0 -> 1 -> 2 -> wrap to 0
    assert (replay.cursor, replay.loops, replay.session()) == (0, 1, "d1#1")
    replay.set_cursor(2)  # a manual jump is not a wrap
    assert replay.session() == "d1#1"
    assert ReplayEngine(FrameIndex([]), now_ms=lambda: 0).session() is None
