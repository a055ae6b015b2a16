"""The price sanity rules: one limit table, finite positive prices, future bars, the mode label."""

from __future__ import annotations

import pytest

from runtime_api.portfolio import accounting as portfolio
from runtime_api.market import sanity

DAY_MS = 86_400_000


def bar(close: float, *, day: str = "2026-02-13", end: int = 0, interval: str = "1m", **prices) -> dict:
    ohlc = {"open": close, "high": close, "low": close, "close": close, **prices}
    return {"interval": interval, "window": {"start_ts_ms": end - 60_000, "end_ts_ms": end, "trading_day": day}, "bar": ohlc, "mode": "real"}


@pytest.mark.parametrize(
    ("symbol", "name", "limit"),
    [
        ("600519.SH", None, 0.10),
        ("000001.SZ", "平安银行", 0.10),
        ("002050.SZ", None, 0.10),
        ("300059.SZ", None, 0.20),  # ChiNext
        ("301001.SZ", None, 0.20),
        ("688981.SH", None, 0.20),  # STAR
        ("600289.SH", "ST信通", 0.05),
        ("000004.SZ", "*ST国华", 0.05),
        ("300313.SZ", "*ST天山", 0.20),  # ST on ChiNext keeps ±20 %
        ("830799.BJ", None, 0.30),
    ],
)
def test_price_limit_table(symbol, name, limit):
    assert sanity.price_limit_pct(symbol, name) == limit


def test_limit_prices_are_inside_and_one_fen_beyond_is_not():
    assert sanity.within_limit(11.0, 10.0, 0.10) and sanity.within_limit(9.0, 10.0, 0.10)
    assert sanity.within_limit(27.5, 25.0, 0.10)  # round(25 * 1.1, 2)
    assert not sanity.within_limit(11.03, 10.0, 0.10)
    assert not sanity.within_limit(8.97, 10.0, 0.10)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, -1.0, 1e300, None, True, "10"])
def test_unusable_prices(value):
    assert sanity.usable_price(value) is False


def test_intraday_bars_are_judged_against_the_previous_days_close():
    daily = [bar(10.0, day="2026-02-11", interval="1d"), bar(20.0, day="2026-02-12", interval="1d")]
    assert sanity.intraday_problem("600519.SH", [bar(21.0), bar(21.9)], daily) is None
    assert sanity.intraday_problem("600519.SH", [bar(21.0), bar(22.5)], daily) == "price_limit_break"
    assert sanity.intraday_problem("300059.SZ", [bar(21.0), bar(23.9)], daily) is None  # ±20 %
    assert sanity.intraday_problem("600519.SH", [bar(21.0, high=float("nan"))], daily) == "invalid_price"
    # Bars of an older day are not today's problem; no reference means finite checks only.
    assert sanity.intraday_problem("600519.SH", [bar(99.0, day="2026-02-12"), bar(21.0)], daily) is None
    assert sanity.intraday_problem("600519.SH", [bar(99.0)], []) is None


def test_daily_history_checks_every_price_and_the_newest_move():
    ok = [bar(10.0, day="2026-02-11", interval="1d"), bar(10.9, day="2026-02-12", interval="1d")]
    assert sanity.daily_problem("600519.SH", ok) is None
    assert sanity.daily_problem("600519.SH", [*ok[:1], bar(12.0, day="2026-02-12", interval="1d")]) == "price_limit_break"
    assert sanity.daily_problem("600519.SH", [bar(-1.0, day="2026-01-05", interval="1d"), *ok]) == "invalid_price"


def test_future_bars_beyond_one_bar_of_skew():
    now = 1_770_950_000_000
    assert sanity.future_frames([bar(1.0, end=now + 60_000)], now) == 0  # the forming bar
    assert sanity.future_frames([bar(1.0, end=now + 61_000), bar(1.0, end=now)], now) == 1
    assert sanity.future_frames([bar(1.0, end=now + DAY_MS - 1, interval="1d")], now) == 0
    assert sanity.future_frames([bar(1.0, end=now + 2 * DAY_MS, interval="1d")], now) == 1


def test_only_frames_labelled_real_are_real():
    assert sanity.not_real({"mode": "real", "frames": [bar(1.0)]}) is False
    assert sanity.not_real({"frames": [bar(1.0)]}) is False  # the bars say real
    assert sanity.not_real({"mode": "mock", "frames": []}) is True
    assert sanity.not_real({"frames": [{**bar(1.0), "mode": None}]}) is True
    assert sanity.not_real({"mode": "real", "frames": [{**bar(1.0), "mode": "mock"}]}) is True


def test_a_feed_error_never_becomes_a_mark():
    snapshot = {"stats": {"latest_available_balance": 90_000.0},
                "holdings": [{"symbol": "600519.SH", "shares": 100, "avg_cost": 100.0, "mark_price": 100.0}]}
    for bad in (1e300, float("nan"), float("inf"), -5.0, 0.0):
        out = portfolio.remark(snapshot, {"600519.SH": bad}, now_iso="2026-02-13T02:30:00.000Z")
        assert out["holdings"][0]["mark_price"] == 100.0 and out["stats"]["latest_total_balance"] == 100_000.0
    good = portfolio.remark(snapshot, {"600519.SH": 101.0}, now_iso="2026-02-13T02:30:00.000Z")
    assert good["stats"]["latest_total_balance"] == 100_100.0
