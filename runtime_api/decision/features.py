"""Per-symbol market context (`agent.market_context.v1`): features computed from 1m and 1d bars."""

from __future__ import annotations

import math
from typing import Any
from runtime_api.numbers import finite

HORIZONS = (
    ("past_6m", "past 6 months", 126),
    ("past_1m", "past 1 month", 21),
    ("past_1w", "past 1 week", 5),
    ("past_1d", "past 1 day", 1),
)

MARKET_SPECS = {
    "CN-A": {"lot_size": 100, "t_plus_one": True, "currency": "CNY"},
    "US": {"lot_size": 1, "t_plus_one": False, "currency": "USD"},
}


def market_spec(market: str) -> dict[str, Any]:
    return dict(MARKET_SPECS.get(market, MARKET_SPECS["CN-A"]))


def js_round(value: float | None, digits: int) -> float | None:
    """Math.round(x * 10^d) / 10^d, as the Node runtime rounds (half up, not half even)."""
    if value is None or not math.isfinite(value):
        return None
    scale = 10**digits
    return math.floor(value * scale + 0.5) / scale


number = finite  # re-exported for the decision modules


def _bar(frame: dict, key: str) -> float | None:
    return number((frame.get("bar") or {}).get(key))


def _closes(frames: list[dict]) -> list[float | None]:
    return [_bar(f, "close") for f in frames]


def sorted_frames(frames: list[dict] | None) -> list[dict]:
    return sorted(frames or [], key=lambda f: number((f.get("window") or {}).get("start_ts_ms")) or 0)


# ---- features ---------------------------------------------------------------------------------


def ret(frames: list[dict], lookback: int) -> float | None:
    if len(frames) <= lookback:
        return None
    latest, base = _bar(frames[-1], "close"), _bar(frames[-1 - lookback], "close")
    if latest is None or not base:
        return None
    return js_round(latest / base - 1, 6)


def sma(frames: list[dict], period: int) -> float | None:
    if len(frames) < period:
        return None
    return js_round(sum(c or 0.0 for c in _closes(frames[-period:])) / period, 4)


def rsi(frames: list[dict], period: int = 14) -> float | None:
    """Simple-average RSI over the last `period` changes; 100 when there were no losses."""
    if len(frames) < period + 1:
        return None
    closes = _closes(frames[-(period + 1):])
    if any(c is None for c in closes):
        return None
    gains = losses = 0.0
    for prev, close in zip(closes, closes[1:]):
        diff = close - prev
        if diff > 0:
            gains += diff
        else:
            losses -= diff
    if losses == 0:
        return 100.0
    rs = (gains / period) / (losses / period)
    return js_round(100 - 100 / (1 + rs), 4)


def atr(frames: list[dict], period: int = 14) -> float | None:
    if len(frames) < period + 1:
        return None
    total = 0.0
    for prev, cur in zip(frames[-(period + 1):], frames[-period:]):
        high, low, prev_close = _bar(cur, "high"), _bar(cur, "low"), _bar(prev, "close")
        if high is None or low is None or prev_close is None:
            return None
        total += max(high - low, abs(high - prev_close), abs(low - prev_close))
    return js_round(total / period, 4)


def vol_ratio(frames: list[dict], period: int = 20) -> float | None:
    if len(frames) < period + 1:
        return None
    latest = _bar(frames[-1], "volume_shares")
    if latest is None:
        return None
    average = sum(_bar(f, "volume_shares") or 0.0 for f in frames[-(period + 1):-1]) / period
    if not average:
        return None
    return js_round(latest / average, 4)


def range_pct(frames: list[dict], period: int = 20) -> float | None:
    if len(frames) < period:
        return None
    window = frames[-period:]
    highs = [h for h in (_bar(f, "high") for f in window) if h is not None]
    lows = [lo for lo in (_bar(f, "low") for f in window) if lo is not None]
    latest = _bar(frames[-1], "close")
    if not highs or not lows or not latest:
        return None
    return js_round((max(highs) - min(lows)) / latest, 6)


# ---- price/volume reference windows -----------------------------------------------------------


def _mean(values: list[float | None]) -> float | None:
    nums = [v for v in values if v is not None]
    return sum(nums) / len(nums) if nums else None


def pct_text(value: float | None) -> str:
    if value is None:
        return "n/a"
    pct = value * 100
    return f"{'+' if pct > 0 else ''}{pct:.2f}%"


def _horizon(frames: list[dict], key: str, label: str, lookback: int) -> dict[str, Any]:
    total = len(frames)
    if total < 2:
        return {
            "lookback_days": lookback,
            "effective_lookback_days": max(0, total - 1),
            "start_close": None,
            "latest_close": None,
            "latest_volume": None,
            "recent_avg_volume": None,
            "previous_avg_volume": None,
            "price_change_pct": None,
            "volume_change_pct": None,
            "latest_vs_recent_volume_ratio": None,
            "description": f"{label}: insufficient daily bars ({total}) for reliable price/volume reference.",
        }
    latest_close = _bar(frames[-1], "close")
    latest_volume = _bar(frames[-1], "volume_shares")
    effective = max(1, min(lookback, total - 1))
    anchor_close = _bar(frames[max(0, total - 1 - effective)], "close")
    price_change = js_round(latest_close / anchor_close - 1, 6) if latest_close is not None and anchor_close else None

    recent_start = max(0, total - effective)
    recent_avg = _mean([_bar(f, "volume_shares") for f in frames[recent_start:]])
    span = max(1, total - recent_start)
    previous_avg = _mean([_bar(f, "volume_shares") for f in frames[max(0, recent_start - span):recent_start]])
    volume_change = js_round(recent_avg / previous_avg - 1, 6) if recent_avg is not None and previous_avg else None
    latest_ratio = js_round(latest_volume / recent_avg, 4) if latest_volume is not None and recent_avg else None

    if volume_change is not None:
        volume_clause = f"recent average volume {pct_text(volume_change)} vs prior window"
    elif latest_ratio is not None:
        volume_clause = f"latest volume {latest_ratio:.2f}x of window average"
    else:
        volume_clause = "volume trend unavailable"
    if anchor_close is not None and latest_close is not None:
        close_clause = f"{anchor_close:.2f} -> {latest_close:.2f}"
    else:
        close_clause = "price path unavailable"
    sample = f" (using {effective} trading days)" if effective < lookback else ""
    return {
        "lookback_days": lookback,
        "effective_lookback_days": effective,
        "start_close": js_round(anchor_close, 4),
        "latest_close": js_round(latest_close, 4),
        "latest_volume": js_round(latest_volume, 4),
        "recent_avg_volume": js_round(recent_avg, 4),
        "previous_avg_volume": js_round(previous_avg, 4),
        "price_change_pct": price_change,
        "volume_change_pct": volume_change,
        "latest_vs_recent_volume_ratio": latest_ratio,
        "description": f"{label}{sample}: price {pct_text(price_change)} ({close_clause}), {volume_clause}.",
    }


def price_volume_references(daily: list[dict]) -> dict[str, Any]:
    windows: dict[str, dict] = {}
    descriptions: dict[str, str] = {}
    lines: list[str] = []
    for key, label, lookback in HORIZONS:
        row = _horizon(daily, key, label, lookback)
        descriptions[key] = row.pop("description")
        windows[key] = row
        lines.append(descriptions[key])
    return {"windows": windows, "descriptions": descriptions, "lines": lines}


# ---- assembly ---------------------------------------------------------------------------------


def position_state(symbol: str, portfolio: dict | None) -> dict[str, Any]:
    """The focus symbol's position plus account totals (Node `buildPositionState`)."""
    portfolio = portfolio or {}
    holdings = [h for h in portfolio.get("holdings") or [] if (number(h.get("shares")) or 0) > 0]
    matched = next((h for h in holdings if h.get("symbol") == symbol), None)

    def unrealized(h: dict) -> float:
        shares = number(h.get("shares")) or 0.0
        avg = number(h.get("avg_cost")) or 0.0
        mark = number(h.get("mark_price"))
        return (mark - avg) * shares if mark is not None else 0.0

    return {
        "shares": int(number(matched.get("shares")) or 0) if matched else 0,
        "avg_cost": (number(matched.get("avg_cost")) or 0.0) if matched else 0.0,
        "unrealized_pnl": js_round(unrealized(matched), 2) if matched else 0.0,
        "cash_cny": number(portfolio.get("cash")) or 0.0,
        "total_balance_cny": number(portfolio.get("total_equity")) or 0.0,
        "total_unrealized_pnl_cny": js_round(sum(unrealized(h) for h in holdings), 2),
        "max_gross_exposure_pct": 1.0,
    }


def _batch_meta(frames: list[dict], default_interval: str) -> dict[str, Any]:
    first = frames[0] if frames else {}
    return {
        "interval": first.get("interval") or default_interval,
        "mode": first.get("mode") or "unknown",
        "provider": first.get("provider") or "unknown",
        "frame_count": len(frames),
    }


def as_of_ts_ms(intraday: list[dict]) -> int | None:
    if not intraday:
        return None
    last = intraday[-1]
    ts = number(last.get("event_ts_ms"))
    if ts is None:
        ts = number((last.get("window") or {}).get("end_ts_ms"))
    return int(ts) if ts is not None else None


def bar_features(symbol: str, intraday: list[dict] | None, daily: list[dict] | None) -> dict[str, Any]:
    """What a symbol's context takes from its bars alone: the same for every agent looking at the same
    bars, so the runtime computes it once per run of bars (`BarMemo`) and `build_symbol_context`
    copies it into each agent's context."""
    intraday = sorted_frames(intraday)
    daily = sorted_frames(daily)
    latest = _bar(intraday[-1], "close") if intraday else None
    return {
        "symbol": symbol,
        "intraday": intraday,
        "daily": daily,
        "as_of_ts_ms": as_of_ts_ms(intraday),
        "latest_price": latest if latest and latest > 0 else None,
        "intraday_features": {
            "ret_5": ret(intraday, 5),
            "ret_20": ret(intraday, 20),
            "atr_14": atr(intraday, 14),
            "vol_ratio_20": vol_ratio(intraday, 20),
        },
        "daily_features": {
            "sma_20": sma(daily, 20),
            "sma_60": sma(daily, 60),
            "rsi_14": rsi(daily, 14),
            "range_20d_pct": range_pct(daily, 20),
        },
        "references": price_volume_references(daily),
    }


def build_symbol_context(
    symbol: str,
    intraday: list[dict] | None,
    daily: list[dict] | None,
    *,
    market: str,
    position: dict | None,
    include_frames: bool = False,
    features: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One symbol's `agent.market_context.v1` (frames only when `include_frames`).

    `features` is `bar_features` of these bars when the caller already has it; the context gets its
    own copies, since the cycle adds to it."""
    if features is None or features["symbol"] != symbol:
        features = bar_features(symbol, intraday, daily)
    refs = features["references"]
    lines = list(refs["lines"])
    context = {
        "schema_version": "agent.market_context.v1",
        "as_of_ts_ms": features["as_of_ts_ms"],
        "symbol": symbol,
        "market": market,
        "constraints": market_spec(market),
        "latest_price": features["latest_price"],
        "intraday": {
            **_batch_meta(features["intraday"], "1m"),
            "feature_snapshot": dict(features["intraday_features"]),
        },
        "daily": {
            **_batch_meta(features["daily"], "1d"),
            "feature_snapshot": dict(features["daily_features"]),
            "price_volume_windows": {key: dict(row) for key, row in refs["windows"].items()},
            "price_volume_descriptions": dict(refs["descriptions"]),
            "price_volume_reference_lines": lines,
            "price_volume_reference_text": " ".join(lines),
        },
        "position_state": dict(position) if position else position_state(symbol, None),
    }
    if include_frames:
        context["intraday"]["frames"] = list(features["intraday"])
        context["daily"]["frames"] = list(features["daily"])
    return context
