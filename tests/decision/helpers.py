"""Builders for bars, contexts and portfolios used across the decision tests."""

from __future__ import annotations

from typing import Any

from runtime_api.decision.context import runtime_config
from runtime_api.decision.features import market_spec
from runtime_api.settings import Settings

BASE_TS = 1_700_000_000_000
MINUTE = 60_000
DAY = 86_400_000


def make_frame(symbol: str, interval: str, index: int, close: float, volume: float = 1_000) -> dict[str, Any]:
    """One market.bar.v1 bar with high/low at close +/- 1 (the Node test's synthetic series)."""
    step = DAY if interval == "1d" else MINUTE
    start = BASE_TS + index * step
    return {
        "schema_version": "market.bar.v1",
        "market": "CN-A",
        "mode": "real",
        "provider": "test-feed",
        "feed": "bars",
        "seq": index + 1,
        "event_ts_ms": start + step,
        "ingest_ts_ms": start + step + 100,
        "instrument": {"symbol": symbol, "exchange": "SSE", "timezone": "Asia/Shanghai", "currency": "CNY"},
        "interval": interval,
        "window": {"start_ts_ms": start, "end_ts_ms": start + step, "trading_day": "2026-02-11"},
        "session": {"phase": "continuous_am", "is_halt": False, "is_partial": False},
        "bar": {
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume_shares": volume,
            "turnover_cny": close * volume,
            "vwap": close,
        },
    }


def series(symbol: str, interval: str, closes: list[float], volume: float = 1_000) -> list[dict]:
    return [make_frame(symbol, interval, i, c, volume) for i, c in enumerate(closes)]


def linear_candidate(symbol: str, *, intraday: int = 25, daily: int = 70, start: float = 100.0, step: float = 1.0) -> dict:
    """Rising 1m and 1d series: enough bars for readiness OK."""
    return {
        "intraday": series(symbol, "1m", [start + step * i for i in range(intraday)]),
        "daily": series(symbol, "1d", [start * 2 + step * i for i in range(daily)]),
    }


def intraday_now(candidate: dict) -> int:
    return candidate["intraday"][-1]["event_ts_ms"]


def portfolio(cash: float, holdings: list[dict] | None = None, sellable: dict | None = None) -> dict[str, Any]:
    """A portfolio input; by default every held share is sellable (bought before today)."""
    holdings = [dict(h) for h in holdings or []]
    for h in holdings:
        h.setdefault("mark_price", h["avg_cost"])
    equity = cash + sum(h["shares"] * h["mark_price"] for h in holdings)
    if sellable is None:
        sellable = {h["symbol"]: h["shares"] for h in holdings}
    return {"cash": cash, "holdings": holdings, "sellable": sellable, "total_equity": equity}


def make_context(
    settings: Settings,
    *,
    ret5: float = 0.0,
    rsi14: float = 50.0,
    sma20: float = 100.0,
    sma60: float = 100.0,
    price: float | None = 101.0,
    ret20: float | None = None,
    symbol: str = "600519.SH",
    market: str = "CN-A",
    items: list[dict] | None = None,
    opening_phase: bool = False,
) -> dict[str, Any]:
    """The shape `build_cycle_context` returns, with chosen features (Node test `makeContext`)."""
    item = {
        "symbol": symbol,
        "latest_price": price,
        "ret_5": ret5,
        "ret_20": ret20,
        "atr_14": None,
        "vol_ratio_20": None,
        "rsi_14": rsi14,
        "sma_20": sma20,
        "sma_60": sma60,
        "range_20d_pct": None,
        "position_shares": 0,
        "rank_score": 1,
    }
    items = items or [item]
    config = runtime_config(settings, market)
    ready = {"schema_version": "agent.data_readiness.v1", "level": "OK", "reasons": [], "opening_phase_active": False}
    if opening_phase:
        ready = {**ready, "level": "WARN", "reasons": ["opening_phase_limited_intraday_history"], "opening_phase_active": True}
        config.update(
            opening_phase_mode=True,
            opening_phase_max_lots=settings.opening_phase_max_lots,
            opening_phase_max_confidence=settings.opening_phase_max_confidence,
        )
    return {
        "schema_version": "agent.market_context.v1",
        "symbol": symbol,
        "market": market,
        "cycle_number": 1,
        "constraints": market_spec(market),
        "latest_price": price,
        "intraday": {"frame_count": 60, "feature_snapshot": {"ret_5": ret5, "ret_20": ret20}},
        "daily": {"frame_count": 90, "feature_snapshot": {"rsi_14": rsi14, "sma_20": sma20, "sma_60": sma60}},
        "position_state": {"shares": 0, "cash_cny": 0},
        "candidate_set": {
            "symbols": [i["symbol"] for i in items],
            "selected_symbol": symbol,
            "selected_by": "strict_loop",
            "items": items,
        },
        "runtime_config": config,
        "data_readiness": ready,
        "memory_state": {"stats": {}, "holdings": [], "recent_actions": []},
        "market_overview": {"source_kind": "benchmark", "brief": ""},
        "news_digest": {"source_kind": "empty", "titles": []},
        "market_breadth": None,
        "session_gate": {"level": "OK", "reasons": [], "market": market, "ts_ms": BASE_TS},
    }


TRADER = {"agent_id": "t_001", "agent_name": "HS300 Momentum", "ai_model": "qwen", "exchange_id": "sim-cn", "stock_pool": []}
