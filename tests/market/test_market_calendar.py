from __future__ import annotations

import pytest

from runtime_api.market import calendar as cal


@pytest.mark.parametrize(
    "local, is_open, phase, reason",
    [
        ("2026-02-13 09:14:59", False, "closed", "outside_cn_a_session"),
        ("2026-02-13 09:15:00", False, "pre_open", "outside_cn_a_session"),
        ("2026-02-13 09:29:59", False, "pre_open", "outside_cn_a_session"),
        ("2026-02-13 09:30:00", True, "continuous_am", None),
        ("2026-02-13 11:29:59", True, "continuous_am", None),
        ("2026-02-13 11:30:00", False, "lunch_break", "lunch_break"),
        ("2026-02-13 11:30:59", False, "lunch_break", "lunch_break"),
        ("2026-02-13 12:59:59", False, "lunch_break", "lunch_break"),
        ("2026-02-13 13:00:00", True, "continuous_pm", None),
        ("2026-02-13 14:56:59", True, "continuous_pm", None),
        ("2026-02-13 14:57:00", False, "close_auction", "close_auction"),
        ("2026-02-13 14:59:59", False, "close_auction", "close_auction"),
        ("2026-02-13 15:00:00", False, "closed", "outside_cn_a_session"),
        ("2026-02-13 15:00:59", False, "closed", "outside_cn_a_session"),
        ("2026-02-14 10:00:00", False, "closed", "weekend"),  # Saturday (an office make-up day, exchange shut)
        ("2026-02-15 10:00:00", False, "closed", "weekend"),
        ("2026-02-17 10:00:00", False, "closed", "holiday"),  # Spring Festival
        ("2026-02-20 10:00:00", False, "closed", "holiday"),  # substituted day off
        ("2026-10-01 10:00:00", False, "closed", "holiday"),  # National Day
        ("2026-10-08 10:00:00", True, "continuous_am", None),
    ],
)
def test_cn_session_state_is_half_open_with_holidays(at, local, is_open, phase, reason):
    state = cal.session_state("CN-A", at(local))
    assert (state["is_open"], state["phase"], state["reason"]) == (is_open, phase, reason)
    assert state["is_trading_day"] == (reason not in ("weekend", "holiday"))


def test_cn_session_state_shape(at):
    state = cal.session_state("CN-A", at("2026-02-13 10:00:07"))
    assert state == {
        "market": "CN-A",
        "timezone": "Asia/Shanghai",
        "now_local": "2026-02-13T10:00:07+08:00",
        "now_shanghai": "2026-02-13T10:00:07+08:00",
        "weekday": 5,
        "minutes_since_midnight": 600,
        "is_open": True,
        "phase": "continuous_am",
        "reason": None,
        "is_trading_day": True,
    }
    assert cal.session_state("CN-A", at("2026-02-15 10:00:00"))["weekday"] == 0  # Sunday


@pytest.mark.parametrize(
    "local, is_open, phase, reason",
    [
        ("2026-07-02 09:29:59", False, "closed", "pre_open"),
        ("2026-07-02 09:30:00", True, "regular", None),
        ("2026-07-02 15:59:59", True, "regular", None),
        ("2026-07-02 16:00:00", False, "closed", "after_close"),
        ("2026-07-03 11:00:00", False, "closed", "holiday"),  # Independence Day observed
        ("2026-07-04 11:00:00", False, "closed", "weekend"),
        ("2026-11-26 11:00:00", False, "closed", "holiday"),  # Thanksgiving
        ("2026-03-09 09:30:00", True, "regular", None),  # first session after the DST switch
    ],
)
def test_us_session_state(at, local, is_open, phase, reason):
    state = cal.session_state("US", at(local, "US"))
    assert (state["is_open"], state["phase"], state["reason"]) == (is_open, phase, reason)
    assert "now_shanghai" not in state


def test_us_now_local_follows_daylight_saving(at):
    assert cal.session_state("US", at("2026-01-05 10:00:00", "US"))["now_local"] == "2026-01-05T10:00:00-05:00"
    assert cal.session_state("US", at("2026-07-06 10:00:00", "US"))["now_local"] == "2026-07-06T10:00:00-04:00"


@pytest.mark.parametrize(
    "day, market, expected",
    [
        ("2026-02-13", "CN-A", True),
        ("2026-02-16", "CN-A", False),
        ("2026-02-17", "CN-A", False),
        ("2026-02-24", "CN-A", True),
        ("2026-02-14", "CN-A", False),
        ("2026-10-01", "CN-A", False),
        ("2026-07-03", "US", False),
        ("2026-07-06", "US", True),
        ("2026-02-16", "US", False),  # Washington's Birthday
        ("2026-02-17", "US", True),  # Spring Festival is a CN holiday only
    ],
)
def test_is_trading_day(day, market, expected):
    assert cal.is_trading_day(day, market) is expected


@pytest.mark.parametrize(
    "utc_ms, market, day",
    [
        (1770913800000, "CN-A", "2026-02-13"),  # 2026-02-12T16:30Z is 00:30 in Shanghai
        (1770951600000, "US", "2026-02-12"),  # 2026-02-13T03:00Z is 22:00 the day before in New York
        (1770951600000, "CN-A", "2026-02-13"),
    ],
)
def test_trading_day_is_the_local_date(utc_ms, market, day):
    assert cal.trading_day_of(utc_ms, market) == day


@pytest.mark.parametrize(
    "exchange_id, market",
    [("sim-us-equity", "US"), ("US", "US"), ("sim-cn-a", "CN-A"), ("", "CN-A"), (None, "CN-A")],
)
def test_market_of_exchange(exchange_id, market):
    assert cal.market_of_exchange(exchange_id) == market


@pytest.mark.parametrize("symbol, market", [("AAPL", "US"), (" msft ", "US"), ("600519.SH", "CN-A"), ("000001.SZ", "CN-A")])
def test_market_of_symbol(symbol, market):
    assert cal.market_of_symbol(symbol) == market


@pytest.mark.parametrize(
    "local, phase",
    [
        ("08:59", "closed"),
        ("09:15", "pre_open"),
        ("09:29", "pre_open"),
        ("09:30", "continuous_am"),
        ("11:29", "continuous_am"),
        ("11:30", "lunch_break"),
        ("12:59", "lunch_break"),
        ("13:00", "continuous_pm"),
        ("14:59", "continuous_pm"),
        ("15:00", "close_auction"),
        ("15:14", "close_auction"),
        ("15:15", "closed"),
    ],
)
def test_bar_phase_uses_the_reference_bar_windows(at, local, phase):
    assert cal.bar_phase(at(f"2026-02-13 {local}:00")) == phase


def test_bar_phase_us(at):
    assert cal.bar_phase(at("2026-07-02 09:30:00", "US"), "US") == "regular"
    assert cal.bar_phase(at("2026-07-02 16:00:00", "US"), "US") == "closed"


def test_session_bounds_cover_both_cn_sessions(at):
    assert cal.session_bounds_ms("2026-02-13", "CN-A") == [
        (at("2026-02-13 09:30:00"), at("2026-02-13 11:30:00")),
        (at("2026-02-13 13:00:00"), at("2026-02-13 15:00:00")),
    ]


def test_holiday_calendar_is_built_once_per_year(at):
    cal.is_trading_day("2031-05-01", "CN-A")
    misses = cal._holidays.cache_info().misses
    for day in ("2031-05-02", "2031-10-01", "2031-12-31"):
        cal.is_trading_day(day, "CN-A")
    assert cal._holidays.cache_info().misses == misses


def test_unknown_market_is_refused():
    with pytest.raises(ValueError, match="unknown market"):
        cal.timezone_of("EU")
