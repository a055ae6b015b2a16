"""The Node odds formula (exact, reference §4.4) and the board's entry rows. Pure functions."""

from __future__ import annotations

import math

PERF_CLAMP = 20.0
SHARE_WEIGHT = 0.75
MIN_PROB = 0.02
ODDS_MIN, ODDS_MAX = 1.05, 30.0


def entries(candidates: list[dict], returns: dict[str, float], pools: dict[str, dict], house_edge: float) -> list[dict]:
    """One row per candidate `{trader_id, trader_name, market, is_running}`, sorted by return then odds."""
    total = sum(float((pools.get(c["trader_id"]) or {}).get("amount") or 0) for c in candidates)
    weights = {}
    for c in candidates:
        ret = float(returns.get(c["trader_id"]) or 0.0)
        perf = math.exp(max(-PERF_CLAMP, min(PERF_CLAMP, ret)) / 8)
        pool = float((pools.get(c["trader_id"]) or {}).get("amount") or 0)
        share = pool / total if total > 0 else 0.0
        weights[c["trader_id"]] = perf * (1 + SHARE_WEIGHT * share)
    weight_sum = sum(weights.values())
    rows = []
    for c in candidates:
        tid = c["trader_id"]
        prob = weights[tid] / weight_sum if weight_sum > 0 else 1 / max(1, len(candidates))
        odds = max(ODDS_MIN, min(ODDS_MAX, (1 - house_edge) / max(MIN_PROB, prob)))
        pool = pools.get(tid) or {}
        rows.append({
            "trader_id": tid,
            "trader_name": c.get("trader_name"),
            "market": c.get("market"),
            "is_running": bool(c.get("is_running")),
            "daily_return_pct": round(float(returns.get(tid) or 0.0), 4),
            "implied_prob": round(prob, 6),
            "odds": round(odds, 4),
            "total_stake": round(float(pool.get("amount") or 0), 2),
            "ticket_count": int(pool.get("tickets") or 0),
        })
    rows.sort(key=lambda r: (-r["daily_return_pct"], -r["odds"]))
    return rows


def payout(stake: float, odds: float) -> int:
    """Points credited to a winning ticket (the stake was debited at placement, so this includes it)."""
    return max(1, round(stake * max(1.0, odds)))
