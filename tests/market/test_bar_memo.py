"""BarMemo: per-run work shared across agents, never served for bars it was not computed from."""

from __future__ import annotations

from runtime_api.market.bar_memo import BarMemo
from runtime_api.market.service import MarketDataService
from runtime_api.market.bars import FrameIndex
from runtime_api.settings import Settings

MINUTE = 60_000


def bar(close: float, *, day: str = "2026-02-13", end: int = 0, interval: str = "1m") -> dict:
    ohlc = {"open": close, "high": close, "low": close, "close": close}
    return {"interval": interval, "window": {"start_ts_ms": end - MINUTE, "end_ts_ms": end, "trading_day": day}, "bar": ohlc}


def counting(memo: BarMemo, label, runs):
    calls = []
    value = memo.get(label, runs, lambda: calls.append(1) or len(calls))
    return value, len(calls)


def test_the_same_slices_of_an_index_are_computed_once():
    frames = [{**bar(10.0 + i * 0.01, end=(i + 1) * MINUTE), "instrument": {"symbol": "600519.SH"}} for i in range(30)]
    index = FrameIndex(frames)
    until = lambda i: (i + 1) * MINUTE  # the end of bar i
    memo = BarMemo()
    assert counting(memo, "x", (index.frames("600519.SH", "1m", 20, until(24)),)) == (1, 1)
    # Another agent asking at the same cursor gets a new list of the same bars: a hit.
    assert counting(memo, "x", (index.frames("600519.SH", "1m", 20, until(24)),)) == (1, 0)
    assert counting(memo, "y", (index.frames("600519.SH", "1m", 20, until(24)),))[1] == 1  # another kind of work
    assert counting(memo, "x", (index.frames("600519.SH", "1m", 20, until(25)),))[1] == 1  # the next bar
    assert counting(memo, "x", (index.frames("600519.SH", "1m", 10, until(24)),))[1] == 1  # a shorter window


def test_equal_bars_that_are_other_objects_are_never_a_hit():
    bars = [bar(10.0, end=60_000 * (i + 1)) for i in range(5)]
    memo = BarMemo()
    memo.get("x", (bars,), lambda: "old")
    reloaded = [dict(b) for b in bars]  # a reload: same timestamps, new objects
    reloaded[2] = bar(float("nan"), end=60_000 * 3)
    assert memo.get("x", (reloaded,), lambda: "new") == "new"


def test_it_is_bounded_and_drops_the_oldest():
    memo = BarMemo(limit=3)
    runs = [[bar(10.0, end=i)] for i in range(5)]
    for i, run in enumerate(runs):
        memo.get("x", (run,), lambda: i)
    assert len(memo) == 3
    assert memo.get("x", (runs[0],), lambda: "rebuilt") == "rebuilt"
    assert memo.get("x", (runs[4],), lambda: "rebuilt") == 4


def test_assess_sees_a_bad_price_that_replaces_good_bars_at_the_same_times():
    service = MarketDataService(Settings())
    daily = [bar(10.0, day="2026-02-11", interval="1d"), bar(10.5, day="2026-02-12", interval="1d")]
    good = [bar(10.6, end=60_000), bar(10.7, end=120_000)]
    assert service.assess("600519.SH", good, daily)["usable"] is True
    bad = [bar(10.6, end=60_000), bar(13.0, end=120_000)]  # beyond the +10 % limit
    verdict = service.assess("600519.SH", bad, daily)
    assert verdict["usable"] is False and verdict["reason"] == "price_limit_break"
    assert service.assess("600519.SH", good, daily)["usable"] is True  # the good run is still known good
