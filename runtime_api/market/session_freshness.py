"""Freshness against the CN session: before the open and in the lunch break, data is judged against
the last session's close, so a pre-open go/no-go can be green on yesterday's complete bars.

* open (continuous trading or the closing auction): data must be recent (`now - latest <= window`),
  except during the first `window` after a session opens, when data ending at the previous
  session's close is still fresh (the first bars of the session are being collected).
* pre_open (a trading day before 09:30, or the lunch break) and closed (after the close, weekends,
  holidays): data is fresh when it ends no earlier than `window` before the last session's close.
* daily history is fresh when its newest bar is the previous trading day (or later).
"""

from __future__ import annotations

from datetime import date, timedelta

from runtime_api.market.calendar import CN, is_trading_day, session_bounds_ms, session_state, trading_day_of

OPEN = "open"
PRE_OPEN = "pre_open"
CLOSED = "closed"
_LOOKBACK_DAYS = 31


def _sessions_before(now_ms: int) -> list[tuple[int, int]]:
    """The sessions (open_ms, close_ms) of today and the previous trading days, newest last."""
    today = date.fromisoformat(trading_day_of(now_ms, CN))
    out: list[tuple[int, int]] = []
    for back in range(_LOOKBACK_DAYS, -1, -1):
        day = today - timedelta(days=back)
        if is_trading_day(day, CN):
            out.extend(session_bounds_ms(day, CN))
    return out


def phase(now_ms: int) -> str:
    """open, pre_open (before the day's open or at lunch on a trading day) or closed."""
    state = session_state(CN, now_ms)
    if state["is_open"] or state["phase"] == "close_auction":
        return OPEN
    if not state["is_trading_day"]:
        return CLOSED
    sessions = session_bounds_ms(trading_day_of(now_ms, CN), CN)
    return PRE_OPEN if now_ms < sessions[-1][0] else CLOSED


def last_close_ms(now_ms: int) -> int | None:
    """The close of the newest session that ended at or before `now_ms`."""
    closes = [close for _, close in _sessions_before(now_ms) if close <= now_ms]
    return closes[-1] if closes else None


def intraday_age_ms(latest_ts_ms: int, now_ms: int, window_ms: int) -> int:
    """How old the data counts as in this phase (compare with `window_ms`; may be negative)."""
    sessions = _sessions_before(now_ms)
    current = next(((o, c) for o, c in sessions if o <= now_ms < c), None)
    previous_close = max((c for _, c in sessions if c <= (current[0] if current else now_ms)), default=None)
    if current is None:
        reference = previous_close if previous_close is not None else now_ms
        return reference - latest_ts_ms
    if now_ms - current[0] <= window_ms and previous_close is not None and latest_ts_ms >= previous_close:
        return 0  # just opened: the previous session's complete data is still the newest there is
    return now_ms - latest_ts_ms


def previous_trading_day(now_ms: int) -> str:
    """The trading day before today (Shanghai), by the exchange calendar."""
    day = date.fromisoformat(trading_day_of(now_ms, CN)) - timedelta(days=1)
    for _ in range(_LOOKBACK_DAYS):
        if is_trading_day(day, CN):
            break
        day -= timedelta(days=1)
    return day.isoformat()


def daily_fresh(newest_trading_day: str | None, now_ms: int) -> bool:
    """The newest daily bar is the previous trading day, or today after the close."""
    return bool(newest_trading_day) and newest_trading_day >= previous_trading_day(now_ms)
