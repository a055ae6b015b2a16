"""The bet board's market clock: the replay clock in replay mode, the wall clock live (§4.1)."""

from __future__ import annotations

from ..market.calendar import is_trading_day, local_datetime

CLOSE_MINUTE = {"CN-A": 15 * 60, "US": 16 * 60}
TIME_ZONE = {"CN-A": "Asia/Shanghai", "US": "America/New_York"}
CUTOFF_BEFORE_CLOSE = 30


def market_clock(market: str, now_ms: int, *, calendar: bool = True) -> dict:
    """Day key, minute and the open/cutoff/close flags. Live days also honour the holiday
    calendar (Node only knew weekends); a replayed day is a trading day by construction."""
    local = local_datetime(now_ms, market)
    close = CLOSE_MINUTE.get(market, CLOSE_MINUTE["CN-A"])
    cutoff = close - CUTOFF_BEFORE_CLOSE
    minute = local.hour * 60 + local.minute
    closed_day = local.weekday() >= 5 or (calendar and not is_trading_day(local.date(), market))
    return {
        "market": market,
        "time_zone": TIME_ZONE.get(market, TIME_ZONE["CN-A"]),
        "day_key": local.date().isoformat(),
        "minute": minute,
        "cutoff_minute": cutoff,
        "close_minute": close,
        "trading_day": not closed_day,
        "betting_open": not closed_day and minute < cutoff,
        "after_cutoff": not closed_day and minute >= cutoff,
        "after_close": not closed_day and minute >= close,
    }
