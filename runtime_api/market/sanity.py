"""Is a bar's price believable? The exchange's daily price limits, finite positive prices, future bars.

The one place for these rules, in the market layer so the live path and the replay path both apply
them: a price that fails here is never used to rank, mark, fill or persist. Each check returns a
short reason code (None when the data is fine) that the runtime shows as the symbol's hold reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from runtime_api.market.bars import INTERVAL_MINUTES

NON_FINITE_PRICE = "invalid_price"  # not a finite positive number
PRICE_LIMIT_BREAK = "price_limit_break"
DATA_IN_FUTURE = "data_in_future"
MODE_NOT_REAL = "mode_not_real"

# Daily price limits (涨跌幅限制) against the previous close, by board. ST stocks have ±5 % on the
# main board; ChiNext (300/301) and STAR (688/689) keep ±20 % for ST too. Beijing (8xx/4xx/920)
# has ±30 %. New listings' first days have no limit: they are not in any agent's pool.
MAIN_BOARD_LIMIT = 0.10
GROWTH_BOARD_LIMIT = 0.20  # ChiNext, STAR
ST_LIMIT = 0.05
BEIJING_LIMIT = 0.30
_GROWTH_PREFIXES = ("300", "301", "688", "689")
_BEIJING_PREFIXES = ("8", "4", "920")
# Limit prices are rounded to the fen: a close exactly at the limit may sit up to 0.01 CNY past
# prev_close x (1 ± limit).
_TICK = 0.01
# No A-share trades anywhere near this; a mark above it is a feed error whatever the reference.
MAX_PLAUSIBLE_PRICE = 1_000_000.0


def price_limit_pct(symbol: str, name: str | None = None) -> float:
    """The daily limit (0.10 = ±10 %) of a CN A-share, from its code and (for ST) its short name."""
    code = str(symbol).split(".", 1)[0]
    if code.startswith(_GROWTH_PREFIXES):
        return GROWTH_BOARD_LIMIT
    if code.startswith(_BEIJING_PREFIXES):
        return BEIJING_LIMIT
    if name and "ST" in str(name).upper():
        return ST_LIMIT
    return MAIN_BOARD_LIMIT


def usable_price(value: Any) -> bool:
    """A finite, positive, plausible number (never a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and 0 < value < MAX_PLAUSIBLE_PRICE


def within_limit(price: float, prev_close: float, limit_pct: float) -> bool:
    """Whether `price` is inside prev_close x (1 ± limit), allowing the fen rounding of limit prices."""
    return prev_close * (1 - limit_pct) - _TICK - 1e-9 <= price <= prev_close * (1 + limit_pct) + _TICK + 1e-9


_OHLC = ("open", "high", "low", "close")


def bar_problem(bar: dict, prev_close: float | None, limit_pct: float) -> str | None:
    """NON_FINITE_PRICE when an OHLC price is not a finite positive number, PRICE_LIMIT_BREAK when
    one lies outside the daily limit against `prev_close` (skipped without a reference), else None."""
    prices = [(bar.get("bar") or {}).get(k) for k in _OHLC]
    if not all(usable_price(p) for p in prices):
        return NON_FINITE_PRICE
    if prev_close is not None and usable_price(prev_close):
        if not all(within_limit(float(p), float(prev_close), limit_pct) for p in prices):
            return PRICE_LIMIT_BREAK
    return None


def trading_day(frame: dict) -> str:
    return str((frame.get("window") or {}).get("trading_day") or "")


def previous_close(daily: Sequence[dict], day: str) -> float | None:
    """The close of the newest daily bar before trading day `day` (YYYY-MM-DD), if any."""
    for frame in reversed(daily):
        if trading_day(frame) < day:
            close = (frame.get("bar") or {}).get("close")
            return float(close) if usable_price(close) else None
    return None


def intraday_problem(symbol: str, bars: Sequence[dict], daily: Sequence[dict], name: str | None = None) -> str | None:
    """The first problem among the newest trading day's 1m bars, each against the previous day's
    close from the daily history (a day with no daily reference is checked for finite prices only).

    Runs for every pool symbol on every cycle, so the day's bounds are computed once and each price
    is compared directly (a NaN fails every comparison, an infinity the bounds)."""
    if not bars:
        return None
    day = trading_day(bars[-1])
    reference = previous_close(daily, day) if day else None
    if reference is None:
        lo, hi = 0.0, MAX_PLAUSIBLE_PRICE
    else:
        limit = price_limit_pct(symbol, name)
        lo, hi = reference * (1 - limit) - _TICK - 1e-9, reference * (1 + limit) + _TICK + 1e-9
    for frame in reversed(bars):
        if trading_day(frame) != day:
            break
        ohlc = frame.get("bar") or {}
        for key in _OHLC:
            price = ohlc.get(key)
            if type(price) not in (int, float) or not (lo <= price <= hi):
                return bar_problem(frame, reference, price_limit_pct(symbol, name))  # name the problem
    return None


def daily_problem(symbol: str, daily: Sequence[dict], name: str | None = None) -> str | None:
    """Every daily bar must have finite positive prices; the newest must be within the limit of the
    one before (older gaps may be ex-rights days of an unadjusted series and are not judged)."""
    for frame in daily:
        ohlc = frame.get("bar") or {}
        for key in _OHLC:
            price = ohlc.get(key)
            if type(price) not in (int, float) or not (0 < price < MAX_PLAUSIBLE_PRICE):
                return NON_FINITE_PRICE
    if len(daily) >= 2:
        prev_close = (daily[-2].get("bar") or {}).get("close")
        return bar_problem(daily[-1], prev_close, price_limit_pct(symbol, name))
    return None


def bar_end_ms(frame: dict) -> int | None:
    window = frame.get("window")
    end = window.get("end_ts_ms") if isinstance(window, dict) else None
    if isinstance(end, bool) or not isinstance(end, (int, float)) or not math.isfinite(end):
        return None
    return int(end)


def future_frames(frames: Sequence[Any], now_ms: int) -> int:
    """How many bars end later than one bar of clock skew after `now_ms` (a still-forming bar ends
    up to one bar ahead; anything later was stamped by a wrong clock or is made up)."""
    count = 0
    for frame in frames:
        if not isinstance(frame, dict):
            continue
        end = bar_end_ms(frame)
        step = INTERVAL_MINUTES.get(str(frame.get("interval") or "1m"), 1) * 60_000
        if end is not None and end > now_ms + step:
            count += 1
    return count


def not_real(batch: dict) -> bool:
    """True unless a frames batch is labelled mode "real" (at the top, else on its first bar) and
    none of its bars says otherwise: an unlabelled file is not trusted as real."""
    frames = [f for f in batch.get("frames") or [] if isinstance(f, dict)]
    label = batch.get("mode") or (frames[0].get("mode") if frames else None)
    return label != "real" or any(f.get("mode") not in (None, "real") for f in frames)
