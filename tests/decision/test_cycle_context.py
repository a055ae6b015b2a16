"""The cycle context: ranking, focus symbol, runtime rules, readiness gate (reference §4.2)."""

from __future__ import annotations

import zlib

from runtime_api.decision.context import build_cycle_context, choose_focus, context_for_api, rank_candidates
from runtime_api.decision.simulator import create_decision

from .helpers import TRADER, intraday_now, linear_candidate, portfolio, series

POOL = ["600519.SH", "300750.SZ", "000001.SZ"]
EXTRAS = {
    "market_overview": {"source_kind": "benchmark", "brief": "A股概览：000001+0.50%"},
    "news_digest": {"source_kind": "digest_file", "titles": ["标题一", "标题二", "标题三"]},
    "market_breadth": {"advancers": 3000, "decliners": 2000, "unchanged": 100, "total": 5100, "advancer_ratio": 0.588235, "red_blue_ratio": 1.5},
    "session_gate": {"level": "OK", "reasons": [], "market": "CN-A", "ts_ms": 0},
}


def candidates() -> dict:
    return {
        "600519.SH": linear_candidate("600519.SH", step=1.0),
        "300750.SZ": linear_candidate("300750.SZ", start=300.0, step=-1.0),
        "000001.SZ": {"intraday": [], "daily": series("000001.SZ", "1d", [10 + 0.1 * i for i in range(70)])},
    }


def build(settings, *, trader=None, cycle=1, cands=None, now_ms=None, pf=None):
    cands = cands or candidates()
    return build_cycle_context(
        trader=trader or {**TRADER, "stock_pool": POOL},
        cycle_number=cycle,
        now_ms=now_ms if now_ms is not None else intraday_now(cands["600519.SH"]),
        candidates=cands,
        portfolio=pf or portfolio(100_000),
        memory_state={"stats": {"decisions": 3}, "holdings": [], "recent_actions": [{"action": "hold"}]},
        extras=EXTRAS,
        settings=settings,
        market="CN-A",
    )


def test_candidate_set_ranks_by_style_score(settings):
    ctx = build(settings.replace(agent_strict_symbol_loop=False))
    cand = ctx["candidate_set"]
    # momentum: rising first; a candidate without 1m bars ranks last whatever its score
    assert cand["symbols"] == ["600519.SH", "300750.SZ", "000001.SZ"]
    assert [i["rank_score"] for i in cand["items"]] == [1, 2, 3]
    assert cand["items"][0]["trend"] == "up" and cand["items"][1]["trend"] == "down"
    assert cand["items"][2]["score"] > cand["items"][1]["score"] and cand["items"][2]["latest_price"] is None
    assert cand["selected_by"] == "rank_score"
    assert cand["selected_symbol"] == cand["ranked_top_symbol"] == "600519.SH"
    assert ctx["symbol"] == "600519.SH" and ctx["cycle_number"] == 1
    item = cand["items"][0]
    assert item["latest_price"] == 124 and item["ret_5"] == 0.042017 and item["price_change_1m"] is not None


def test_mean_reversion_ranks_the_falling_symbol_first(settings):
    rows = [
        {"symbol": "UP", "ret_5": 0.01, "ret_20": 0.02, "rsi_14": 60, "sma_20": 105, "sma_60": 100},
        {"symbol": "DOWN", "ret_5": -0.01, "ret_20": -0.02, "rsi_14": 40, "sma_20": 101, "sma_60": 100},
    ]
    ranked = rank_candidates(rows, {"trading_style": "mean_reversion"})
    assert [r["symbol"] for r in ranked] == ["DOWN", "UP"]
    assert ranked[0]["score"] == 0.367 and ranked[0]["rank_ret_5"] == 2
    held = rank_candidates([{**rows[0], "position_shares": 100}, rows[1]], {"trading_style": "momentum_trend"})
    assert held[0]["score"] == 0.2 + 0.02 + 0.008 + 0.05


def test_strict_loop_round_robins_over_symbols_with_intraday_bars(settings):
    eligible = ["600519.SH", "300750.SZ"]  # 000001.SZ has no 1m bars: never the focus
    base = zlib.crc32(b"t_001")
    for cycle in range(1, 5):
        cand = build(settings, cycle=cycle)["candidate_set"]
        assert cand["selected_by"] == "strict_loop"
        assert cand["selected_symbol"] == cand["loop_symbol"] == eligible[(base + cycle) % 2]
        assert cand["symbols"] == ["600519.SH", "300750.SZ", "000001.SZ"]


def test_runtime_config_memory_extras_and_readiness(settings):
    ctx = build(settings)
    assert ctx["runtime_config"] == {
        "commission_rate": 0.0003, "min_commission": 5.0, "stamp_duty_rate": 0.0005, "lot_size": 100,
        "t_plus_one": True, "currency": "CNY", "max_position_count": 4, "max_symbol_concentration_pct": 0.45,
        "min_cash_reserve_pct": 0.08, "turnover_throttle_pct": 0.35, "flat_entry_enabled": False,
        "conservative_probe_enabled": True, "opening_phase_mode": False,
    }
    assert ctx["memory_state"]["stats"] == {"decisions": 3}
    assert ctx["market_overview"]["brief"].startswith("A股概览") and len(ctx["news_digest"]["titles"]) == 3
    assert ctx["market_breadth"]["advancers"] == 3000 and ctx["session_gate"]["level"] == "OK"
    assert ctx["data_readiness"]["level"] == "OK" and "llm_decision" not in ctx
    assert ctx["position_state"]["cash_cny"] == 100_000


def test_readiness_error_forces_a_gated_hold(settings):
    cands = {"600519.SH": linear_candidate("600519.SH", intraday=1)}
    ctx = build(settings, cands=cands, trader={**TRADER, "stock_pool": ["600519.SH"]})
    gate = ctx["llm_decision"]
    assert gate["source"] == "readiness_gate" and gate["action"] == "hold" and gate["confidence"] == 0.51
    assert gate["reasoning"].startswith("data readiness ERROR: intraday_frames_insufficient")
    out = create_decision(
        context=ctx, trader=TRADER, llm=None, llm_failure=None, portfolio=portfolio(100_000), settings=settings,
        cycle_number=1, now_iso="2026-02-17T22:51:24.735Z", now_ms=0,
    )
    record = out.record
    assert record["system_prompt"] == "agent.data_readiness.v1"
    assert record["cot_trace"] == "forced_hold_due_to_data_readiness_error"
    assert record["decisions"][0]["confidence"] == 0.51
    assert record["decisions"][0]["reasoning"].startswith("data readiness ERROR: ")
    assert record["reasoning_steps_cn"][0].startswith("1 数据状态：ERROR（intraday_frames_insufficient")
    assert record["reasoning_steps_cn"][-1].startswith("4 动作：HOLD（数据未就绪（")
    assert out.fill["source"] == "readiness_gate" and out.fill["action"] == "hold"
    assert out.audit_fields["forced_hold"] is True and out.audit_fields["hold_semantics"] == "no_position_no_order"


def test_stale_data_is_an_error_and_opening_phase_caps_orders(settings):
    cands = candidates()
    stale = build(settings, cands=cands, now_ms=intraday_now(cands["600519.SH"]) + 400_000)
    assert stale["data_readiness"]["reasons"] == ["data_too_stale"]
    opening = build(settings, cands={"600519.SH": linear_candidate("600519.SH", intraday=6)},
                    trader={**TRADER, "stock_pool": ["600519.SH"]})
    assert opening["data_readiness"]["level"] == "WARN"
    assert opening["runtime_config"]["opening_phase_mode"] is True
    assert opening["runtime_config"]["opening_phase_max_lots"] == 1
    assert opening["runtime_config"]["opening_phase_max_confidence"] == 0.72


def test_heuristic_cycle_end_to_end_reasoning_steps(settings):
    ctx = build(settings, cycle=2)
    out = create_decision(
        context=ctx, trader=TRADER, llm=None, llm_failure=None, portfolio=portfolio(100_000), settings=settings,
        cycle_number=2, now_iso="2026-02-17T22:53:00.967Z", now_ms=0,
    )
    steps = out.record["reasoning_steps_cn"]
    assert steps[0] == "1 数据状态：OK"
    assert steps[1] == "2 市场概览：A股概览：000001+0.50%；消息面：标题一；标题二"
    assert steps[2].startswith("3 信号快照：5m") and "RSI" in steps[2]
    assert steps[3].startswith("4 动作：")
    assert out.record["candidate_coins"] == ctx["candidate_set"]["symbols"]


def test_us_context_rules(settings):
    cands = {"AAPL": linear_candidate("AAPL")}
    ctx = build_cycle_context(
        trader={**TRADER, "exchange_id": "sim-us", "stock_pool": ["AAPL"]}, cycle_number=1,
        now_ms=intraday_now(cands["AAPL"]), candidates=cands, portfolio=portfolio(10_000),
        memory_state=None, extras=None, settings=settings, market="US",
    )
    rules = ctx["runtime_config"]
    assert (rules["lot_size"], rules["t_plus_one"], rules["stamp_duty_rate"], rules["currency"]) == (1, False, 0.0, "USD")


def test_context_for_api_includes_frames_rules_and_memory(settings):
    cand = linear_candidate("600519.SH")
    ctx = context_for_api(
        symbol="600519.SH", intraday=cand["intraday"], daily=cand["daily"], portfolio=portfolio(100_000),
        memory_state={"stats": {}, "holdings": [], "recent_actions": []}, settings=settings, market="CN-A",
        now_ms=intraday_now(cand),
    )
    assert len(ctx["intraday"]["frames"]) == 25 and len(ctx["daily"]["frames"]) == 70
    assert ctx["runtime_config"]["lot_size"] == 100 and ctx["data_readiness"]["level"] == "OK"
    assert set(ctx["memory_state"]) == {"replay", "stats", "holdings", "recent_actions"}


def test_position_review_looks_at_a_sellable_holding_every_second_cycle(settings):
    pool = ["600519.SH", "300750.SZ", "000001.SZ"]
    ranked = [{"symbol": s, "intraday_frames": 0 if s == "000001.SZ" else 30} for s in pool]
    trader = {"agent_id": "t_001"}
    sellable = {"300750.SZ": 100, "000001.SZ": 100, "600519.SH": 0}  # 000001.SZ has no bars: never the focus
    for cycle in range(1, 9):
        focus = choose_focus(trader, cycle, pool, ranked, settings, sellable)
        if cycle % 2 == 0:
            assert (focus["selected_symbol"], focus["selected_by"]) == ("300750.SZ", "position_review")
        else:
            assert focus["selected_by"] == "strict_loop" and focus["selected_symbol"] in ("600519.SH", "300750.SZ")
    assert choose_focus(trader, 2, pool, ranked, settings, {"600519.SH": 0})["selected_by"] == "strict_loop"
    off = settings.replace(agent_position_review_enabled=False)
    assert choose_focus(trader, 2, pool, ranked, off, sellable)["selected_by"] == "strict_loop"
