"""The cycle context: every candidate's features, their ranking, the focus symbol and readiness."""

from __future__ import annotations

import json
import zlib
from typing import Any

from runtime_api.decision import heuristic, readiness
from runtime_api.decision.features import build_symbol_context, js_round, market_spec, number, position_state
from runtime_api.settings import Settings

FEATURE_KEYS = ("ret_5", "ret_20", "atr_14", "vol_ratio_20", "rsi_14", "sma_20", "sma_60", "range_20d_pct")
HORIZON_KEYS = {
    "past_6m": "price_change_6m",
    "past_1m": "price_change_1m",
    "past_1w": "price_change_1w",
    "past_1d": "price_change_1d",
}


def stable_hash(text: str) -> int:
    """A process-independent hash (Python's `hash` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def runtime_config(settings: Settings, market: str) -> dict[str, Any]:
    """The trading rules the simulator applies, as reported in the context."""
    spec = market_spec(market)
    cn = market == "CN-A"
    return {
        "commission_rate": settings.agent_commission_rate,
        "min_commission": settings.agent_min_commission,
        "stamp_duty_rate": settings.agent_stamp_duty_rate if cn else 0.0,
        "lot_size": spec["lot_size"],
        "t_plus_one": bool(cn and settings.agent_t_plus_one),
        "currency": spec["currency"],
        "max_position_count": settings.agent_portfolio_max_position_count,
        "max_symbol_concentration_pct": settings.agent_portfolio_max_symbol_concentration_pct,
        "min_cash_reserve_pct": settings.agent_portfolio_min_cash_reserve_pct,
        "turnover_throttle_pct": settings.agent_portfolio_turnover_throttle_pct,
        "flat_entry_enabled": settings.agent_flat_entry_enabled,
        "conservative_probe_enabled": settings.agent_conservative_probe_enabled,
        "opening_phase_mode": False,
    }


def candidate_item(ctx: dict, name: str | None = None) -> dict[str, Any]:
    """A flat row of one candidate's features (None where a feature is missing)."""
    features = heuristic.context_features(ctx)
    windows = (ctx.get("daily") or {}).get("price_volume_windows") or {}
    item: dict[str, Any] = {"symbol": ctx["symbol"], "latest_price": ctx.get("latest_price")}
    if name:
        item["name"] = name
    item.update({key: features.get(key) for key in FEATURE_KEYS})
    item["position_shares"] = (ctx.get("position_state") or {}).get("shares", 0)
    item["intraday_frames"] = (ctx.get("intraday") or {}).get("frame_count", 0)
    item["daily_frames"] = (ctx.get("daily") or {}).get("frame_count", 0)
    item.update({out: (windows.get(key) or {}).get("price_change_pct") for key, out in HORIZON_KEYS.items()})
    return item


def _score(row: dict, style: str) -> tuple[float, str]:
    s = heuristic.signals(row)
    vol = number(row.get("vol_ratio_20"))
    vol = 1.0 if vol is None else vol
    if style == "mean_reversion":
        score = -s.ret5 - s.ret20 * 0.35
        score += 0.35 if s.rsi <= 45 else 0.0
        score -= 0.25 if s.rsi >= 70 else 0.0
        score -= 0.12 if s.bearish else 0.0
    elif style == "event_driven":
        score = s.ret5 * 0.8 + s.ret20 * 0.6 + max(0.0, vol - 1) * 0.22
        score += 0.12 if s.bullish else (-0.12 if s.bearish else 0.0)
    elif style == "macro_swing":
        score = s.ret20 * 1.3 + s.ret5 * 0.35
        score += 0.24 if s.bullish else (-0.22 if s.bearish else 0.0)
    else:
        score = s.ret20 + s.ret5 * 0.8 + max(0.0, vol - 1) * 0.12
        score += 0.2 if s.bullish else (-0.18 if s.bearish else 0.0)
    if (number(row.get("position_shares")) or 0) > 0:
        score += 0.05
    trend = "up" if s.bullish else ("down" if s.bearish else "flat")
    return js_round(score, 6), trend


def rank_candidates(rows: list[dict], trader: dict) -> list[dict]:
    """Style-dependent score, best first, with rank positions by score, ret_5 and ret_20 (1-based).

    Candidates without intraday bars (`intraday_frames == 0`) rank after every candidate with data.
    """
    style = heuristic.profile(trader).style
    scored = []
    for row in rows:
        score, trend = _score(row, style)
        scored.append({**row, "score": score, "trend": trend})
    scored.sort(key=lambda r: (r.get("intraday_frames", 1) == 0, -r["score"]))  # stable: pool order breaks ties
    by_ret5 = [r["symbol"] for r in sorted(scored, key=lambda r: -(number(r.get("ret_5")) or 0.0))]
    by_ret20 = [r["symbol"] for r in sorted(scored, key=lambda r: -(number(r.get("ret_20")) or 0.0))]
    for index, row in enumerate(scored):
        row["rank_score"] = index + 1
        row["rank_ret_5"] = by_ret5.index(row["symbol"]) + 1
        row["rank_ret_20"] = by_ret20.index(row["symbol"]) + 1
    return scored


def candidate_symbols(trader: dict, candidates: dict, settings: Settings) -> list[str]:
    """Pool order, truncated to the candidate limit, keeping only symbols the caller has data for."""
    pool = [s for s in trader.get("stock_pool") or [] if s in candidates]
    extra = [s for s in candidates if s not in pool]
    return (pool + extra)[: settings.agent_candidate_symbol_limit]


def choose_focus(
    trader: dict, cycle_number: int, pool: list[str], ranked: list[dict], settings: Settings, sellable: dict | None = None
) -> dict:
    """Round-robin (strict loop) or top-ranked focus, skipping candidates without intraday bars.

    With position review on, every second cycle looks at a holding that can be sold today (round-robin
    among them): the plain loop visits a held symbol once per pool length, so exits were rarely judged."""
    with_data = {r["symbol"] for r in ranked if r.get("intraday_frames")}
    eligible = [s for s in pool if s in with_data] or list(pool)
    ranked_eligible = [r["symbol"] for r in ranked if r["symbol"] in eligible]
    ranked_top = ranked_eligible[0] if ranked_eligible else (ranked[0]["symbol"] if ranked else None)
    trader_id = str(trader.get("agent_id") or trader.get("trader_id") or "")
    loop_symbol = None
    if settings.agent_strict_symbol_loop and eligible:
        loop_symbol = eligible[(stable_hash(trader_id) + int(cycle_number)) % len(eligible)]
    selected_by = "strict_loop" if loop_symbol else "rank_score"
    review = [s for s in eligible if int((sellable or {}).get(s) or 0) > 0]
    if settings.agent_position_review_enabled and review and int(cycle_number) % 2 == 0:
        loop_symbol = review[(int(cycle_number) // 2) % len(review)]
        selected_by = "position_review"
    selected = loop_symbol or ranked_top
    return {
        "selected_symbol": selected,
        "selected_by": selected_by,
        "loop_symbol": loop_symbol,
        "ranked_top_symbol": ranked_top,
    }


def readiness_gate(symbol: str, ready: dict) -> dict[str, Any]:
    """The forced HOLD that replaces any model call when readiness is ERROR."""
    reasons = ", ".join(ready.get("reasons", [])[:3])
    return {
        "source": "readiness_gate",
        "model": None,
        "action": "hold",
        "symbol": symbol,
        "confidence": 0.51,
        "quantity": 0,
        "reasoning": f"data readiness ERROR: {reasons}"[:200],
        "system_prompt": readiness.SCHEMA,
        "input_prompt": json.dumps({"symbol": symbol, "readiness": ready}, ensure_ascii=False, separators=(",", ":")),
        "cot_trace": "forced_hold_due_to_data_readiness_error",
    }


def build_cycle_context(
    *,
    trader: dict,
    cycle_number: int,
    now_ms: int,
    candidates: dict[str, dict],
    portfolio: dict,
    memory_state: dict | None,
    extras: dict | None,
    settings: Settings,
    market: str,
) -> dict[str, Any]:
    """The focus symbol's market context plus candidate set, rules, memory, readiness and extras."""
    pool = candidate_symbols(trader, candidates, settings)
    contexts = {}
    rows = []
    for symbol in pool:
        data = candidates.get(symbol) or {}
        ctx = build_symbol_context(
            symbol,
            data.get("intraday"),
            data.get("daily"),
            market=market,
            position=position_state(symbol, portfolio),
            features=data.get("features"),
        )
        contexts[symbol] = ctx
        rows.append(candidate_item(ctx, data.get("name")))
    ranked = rank_candidates(rows, trader)
    focus = choose_focus(trader, cycle_number, pool, ranked, settings, (portfolio or {}).get("sellable"))
    symbol = focus["selected_symbol"]
    if symbol is None:  # no candidates at all: an empty context the simulator turns into a hold
        symbol = (trader.get("stock_pool") or ["UNKNOWN"])[0]
        contexts[symbol] = build_symbol_context(
            symbol, [], [], market=market, position=position_state(symbol, portfolio)
        )
        focus["selected_symbol"] = symbol

    context = contexts[symbol]
    context["trader_id"] = trader.get("agent_id") or trader.get("trader_id")
    context["cycle_number"] = cycle_number
    extras = extras or {}
    excluded = dict(extras.get("excluded_symbols") or {})
    context["candidate_set"] = {
        "symbols": [r["symbol"] for r in ranked] or [symbol],
        **focus,
        "items": ranked,
        "excluded": excluded,
    }
    config = runtime_config(settings, market)
    context["runtime_config"] = config
    daily = context["daily"]
    context["preopen_price_volume_reference"] = {
        "symbol": symbol,
        "lines": daily["price_volume_reference_lines"],
        "text": daily["price_volume_reference_text"],
    }
    memory_state = memory_state or {}
    context["memory_state"] = {
        "replay": memory_state.get("replay"),
        "stats": memory_state.get("stats") or {},
        "holdings": memory_state.get("holdings") or [],
        "recent_actions": memory_state.get("recent_actions") or [],
    }

    ready = readiness.evaluate(context, now_ms=now_ms, settings=settings)
    if not pool and excluded:
        # Every pool symbol was refused (stale, missing or bad prices): hold, and say why.
        why = [f"{sym}:{reason}" for sym, reason in sorted(excluded.items())]
        ready = {**ready, "level": "ERROR", "reasons": ["no_usable_symbol", *why[:5]], "excluded_symbols": excluded}
    context["data_readiness"] = ready
    if ready["opening_phase_active"]:
        config["opening_phase_mode"] = True
        config["opening_phase_max_lots"] = settings.opening_phase_max_lots
        config["opening_phase_max_confidence"] = settings.opening_phase_max_confidence
    if ready["level"] == "ERROR":
        config["flat_entry_enabled"] = False
        config["conservative_probe_enabled"] = False
        context["llm_decision"] = readiness_gate(symbol, ready)

    overview = extras.get("market_overview") or {}
    digest = extras.get("news_digest") or {}
    context["market_overview"] = {"source_kind": overview.get("source_kind"), "brief": overview.get("brief") or ""}
    context["news_digest"] = {"source_kind": digest.get("source_kind"), "titles": list(digest.get("titles") or [])}
    context["market_breadth"] = extras.get("market_breadth")
    context["session_gate"] = extras.get("session_gate")
    features = context["intraday"]["feature_snapshot"]
    context["symbol_brief"] = {
        "symbol": symbol,
        "last_bar_ts_ms": context["as_of_ts_ms"],
        "ret_5": features["ret_5"],
        "ret_20": features["ret_20"],
    }
    return context


def context_for_api(
    *,
    symbol: str,
    intraday: list[dict],
    daily: list[dict],
    portfolio: dict,
    memory_state: dict | None,
    settings: Settings,
    market: str,
    now_ms: int,
) -> dict[str, Any]:
    """`/api/agent/market-context`: a full market context (frames included) with rules and memory."""
    context = build_symbol_context(
        symbol, intraday, daily, market=market, position=position_state(symbol, portfolio), include_frames=True
    )
    context["runtime_config"] = runtime_config(settings, market)
    memory_state = memory_state or {}
    context["memory_state"] = {
        "replay": memory_state.get("replay"),
        "stats": memory_state.get("stats") or {},
        "holdings": memory_state.get("holdings") or [],
        "recent_actions": memory_state.get("recent_actions") or [],
    }
    context["data_readiness"] = readiness.evaluate(context, now_ms=now_ms, settings=settings)
    return context
