"""Exchange calendars and trading sessions for CN A-shares (XSHG) and US equities (NYSE).

Windows are half-open on the second (11:29:59 is open, 11:30:00 is not), holidays come from the
`holidays` package's exchange calendars, and every trading day or day key is the local date in the
market's own timezone.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

CN = "CN-A"
US = "US"
MARKETS = (CN, US)

_TIMEZONES = {CN: "Asia/Shanghai", US: "America/New_York"}
_EXCHANGES = {CN: "XSHG", US: "NYSE"}

# Continuous-trading sessions as (open, close) minutes since local midnight.
SESSIONS: dict[str, tuple[tuple[int, int], ...]] = {
    CN: ((9 * 60 + 30, 11 * 60 + 30), (13 * 60, 15 * 60)),
    US: ((9 * 60 + 30, 16 * 60),),
}

# session_state() for CN: (start, end, phase, reason) in seconds since midnight, half-open.
_CN_STATE_WINDOWS = (
    (9 * 3600 + 15 * 60, 9 * 3600 + 30 * 60, "pre_open", "outside_cn_a_session"),
    (9 * 3600 + 30 * 60, 11 * 3600 + 30 * 60, "continuous_am", None),
    (11 * 3600 + 30 * 60, 13 * 3600, "lunch_break", "lunch_break"),
    (13 * 3600, 14 * 3600 + 57 * 60, "continuous_pm", None),
    (14 * 3600 + 57 * 60, 15 * 3600, "close_auction", "close_auction"),
)

# bar_phase() for CN bars, in minutes, as the Node runtime labels them (reference §5.1).
_CN_BAR_WINDOWS = (
    (9 * 60 + 15, 9 * 60 + 30, "pre_open"),
    (9 * 60 + 30, 11 * 60 + 30, "continuous_am"),
    (11 * 60 + 30, 13 * 60, "lunch_break"),
    (13 * 60, 15 * 60, "continuous_pm"),
    (15 * 60, 15 * 60 + 15, "close_auction"),
)

_US_SYMBOL = re.compile(r"^[A-Z]{1,6}$")


def market_of_exchange(exchange_id: str) -> str:
    """'US' when the exchange id mentions "us" (e.g. sim-us-equity), else 'CN-A', as the Node runtime."""
    return US if "us" in str(exchange_id or "").lower() else CN


def market_of_symbol(symbol: str) -> str:
    """'US' for plain tickers (AAPL), else 'CN-A' (600519.SH)."""
    return US if _US_SYMBOL.match(str(symbol or "").strip().upper()) else CN


def _market(market: str) -> str:
    if market not in _TIMEZONES:
        raise ValueError(f"unknown market {market!r}; expected one of {', '.join(MARKETS)}")
    return market


@lru_cache(maxsize=None)
def timezone_of(market: str) -> ZoneInfo:
    """The market's exchange timezone."""
    return ZoneInfo(_TIMEZONES[_market(market)])


def local_datetime(ts_ms: int, market: str) -> datetime:
    """An epoch-ms timestamp as an aware datetime on the market's wall clock."""
    return datetime.fromtimestamp(ts_ms / 1000, timezone_of(market))


def trading_day_of(ts_ms: int, market: str = CN) -> str:
    """The local date (YYYY-MM-DD) of a timestamp in the market's timezone."""
    return local_datetime(ts_ms, market).date().isoformat()


@lru_cache(maxsize=64)
def _holidays(market: str, year: int) -> frozenset[date]:
    # Imported lazily: building a year's calendar costs ~0.1 s, which boot should not pay.
    import holidays

    return frozenset(holidays.financial_holidays(_EXCHANGES[_market(market)], years=year).keys())


def _as_date(day: date | str) -> date:
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    return date.fromisoformat(str(day))


def is_holiday(day: date | str, market: str) -> bool:
    """True when the exchange is closed for a holiday on that (week)day."""
    d = _as_date(day)
    return d in _holidays(market, d.year)


def is_trading_day(day: date | str, market: str) -> bool:
    """A weekday that is not an exchange holiday."""
    d = _as_date(day)
    return d.weekday() < 5 and not is_holiday(d, market)


def session_bounds_ms(day: date | str, market: str) -> list[tuple[int, int]]:
    """The day's continuous sessions as (open_ms, close_ms) epoch pairs (whatever the calendar says)."""
    d = _as_date(day)
    tz = timezone_of(market)
    out = []
    for open_min, close_min in SESSIONS[market]:
        start = datetime(d.year, d.month, d.day, open_min // 60, open_min % 60, tzinfo=tz)
        end = datetime(d.year, d.month, d.day, close_min // 60, close_min % 60, tzinfo=tz)
        out.append((int(start.timestamp() * 1000), int(end.timestamp() * 1000)))
    return out


def session_state(market: str, now_ms: int) -> dict:
    """Whether continuous trading is open now, with the phase and the reason it is not."""
    now = local_datetime(now_ms, market)
    seconds = now.hour * 3600 + now.minute * 60 + now.second
    trading_day = is_trading_day(now.date(), market)
    if now.weekday() >= 5:
        phase, reason = "closed", "weekend"
    elif not trading_day:
        phase, reason = "closed", "holiday"
    elif market == CN:
        phase, reason = "closed", "outside_cn_a_session"
        for start, end, window_phase, window_reason in _CN_STATE_WINDOWS:
            if start <= seconds < end:
                phase, reason = window_phase, window_reason
                break
    else:
        open_s, close_s = (m * 60 for m in SESSIONS[US][0])
        if seconds < open_s:
            phase, reason = "closed", "pre_open"
        elif seconds >= close_s:
            phase, reason = "closed", "after_close"
        else:
            phase, reason = "regular", None
    state = {
        "market": market,
        "timezone": _TIMEZONES[market],
        "now_local": now.isoformat(timespec="seconds"),
        "weekday": (now.weekday() + 1) % 7,  # 0 = Sunday, as JavaScript's getDay()
        "minutes_since_midnight": now.hour * 60 + now.minute,
        "is_open": reason is None,
        "phase": phase,
        "reason": reason,
        "is_trading_day": trading_day,
    }
    if market == CN:
        state["now_shanghai"] = state["now_local"]
    return state


def bar_phase(ts_ms: int, market: str = CN) -> str:
    """The `session.phase` label of a bar starting at ts_ms (Node's half-open bar windows)."""
    now = local_datetime(ts_ms, market)
    minutes = now.hour * 60 + now.minute
    if market == US:
        open_min, close_min = SESSIONS[US][0]
        return "regular" if open_min <= minutes < close_min else "closed"
    for start, end, phase in _CN_BAR_WINDOWS:
        if start <= minutes < end:
            return phase
    return "closed"
