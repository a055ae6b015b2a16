"""Port of the Node agentDecisionRuntime guardrail tests (createDecisionFromContext).

Fees do not change any quantity asserted here, so these run with the defaults (commission 0.0003
with a 5.0 minimum, CN stamp duty 0.0005, T+1 on with every held share sellable), except the exits
Node never had (announced stop/target, reversion exit: tests/decision/test_exits.py), which are off.
"""

from __future__ import annotations

from runtime_api.decision.llm import LlmDecision
from runtime_api.decision.simulator import create_decision

from .helpers import TRADER, make_context, portfolio

NOW_ISO = "2026-02-12T00:00:00.000Z"


def llm_decision(action: str, symbol: str, confidence: float, quantity: int, reasoning: str) -> LlmDecision:
    return LlmDecision(
        action=action, symbol=symbol, confidence=confidence, quantity=quantity, reasoning=reasoning,
        model="gpt-4o-mini", system_prompt="sys", input_prompt="{}", cot_trace=reasoning,
    )


def decide(settings, context, pf, *, trader=TRADER, llm=None, cycle=3):
    node = settings.replace(agent_announced_exit_enabled=False, agent_reversion_exit_enabled=False)
    return create_decision(
        context=context, trader=trader, llm=llm, llm_failure=None, portfolio=pf, settings=node,
        cycle_number=cycle, now_iso=NOW_ISO, now_ms=0,
    )


HELD = [{"symbol": "600519.SH", "shares": 100, "avg_cost": 100.0}]


def test_buy_on_positive_momentum_and_bullish_trend(settings):
    ctx = make_context(settings, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=108)
    out = decide(settings, ctx, portfolio(90_000, HELD))
    head = out.record["decisions"][0]
    assert (head["action"], head["symbol"], head["quantity"]) == ("buy", "600519.SH", 100)
    assert 2 <= len(out.record["reasoning_steps_cn"]) <= 4
    assert out.record["decision_source"] == "rule.heuristic"
    assert out.record["system_prompt"] == "agent.market_context.rule_engine.v1"
    assert out.record["cot_trace"].splitlines()[0].startswith("decision_path=heuristic action=buy")


def test_sell_on_overbought_or_negative_momentum(settings):
    ctx = make_context(settings, ret5=-0.005, rsi14=78, sma20=99, sma60=101, price=96)
    out = decide(settings, ctx, portfolio(90_000, HELD), cycle=9)
    head = out.record["decisions"][0]
    assert (head["action"], head["quantity"]) == ("sell", 100)
    # (96 - 100) * 100 - commission 5.00 (minimum) - stamp duty 4.80
    assert head["realized_pnl"] == -409.8


def test_sell_without_holdings_on_target_becomes_successful_hold(settings):
    ctx = make_context(settings, ret5=-0.005, rsi14=78, sma20=99, sma60=101, price=96)
    pf = portfolio(90_000, [{"symbol": "300750.SZ", "shares": 200, "avg_cost": 300.0, "mark_price": 305.0}])
    out = decide(settings, ctx, pf, cycle=9)
    head = out.record["decisions"][0]
    assert head["action"] == "hold"
    assert out.record["success"] is True and out.record["error_message"] == ""
    assert "ignore sell without holdings" in head["reasoning"]
    assert out.fill["executed"] is False and out.fill["order_id"] is None


def test_trading_style_from_manifest_matters(settings):
    weak_pullback = make_context(settings, ret5=-0.004, rsi14=40, sma20=106, sma60=100, price=98)
    momentum = {**TRADER, "agent_id": "x_momo", "trading_style": "momentum_trend", "risk_profile": "balanced"}
    reversion = {**TRADER, "agent_id": "x_revert", "trading_style": "mean_reversion", "risk_profile": "balanced"}
    assert decide(settings, weak_pullback, portfolio(90_000, HELD), trader=momentum).fill["action"] == "sell"
    assert decide(settings, weak_pullback, portfolio(90_000, HELD), trader=reversion).fill["action"] == "buy"


def test_reasoning_includes_market_overview_and_news(settings):
    ctx = make_context(settings, ret5=0.003, rsi14=56, sma20=106, sma60=100, price=108)
    ctx["market_overview"] = {"source_kind": "benchmark", "brief": "两市成交回暖，权重与科技轮动。"}
    ctx["news_digest"] = {"source_kind": "digest_file", "titles": ["央行公开市场操作平稳", "海外股指夜盘走强"]}
    reasoning = decide(settings, ctx, portfolio(90_000, HELD)).record["decisions"][0]["reasoning"]
    assert "market=" in reasoning and "news=" in reasoning


def test_conservative_probe_buys_one_lot_on_pullback_and_bearish_pullback(settings):
    trader = {**TRADER, "trading_style": "mean_reversion", "risk_profile": "conservative"}
    normal = make_context(settings, ret5=-0.003, ret20=-0.002, rsi14=50, sma20=101, sma60=100, price=20)
    bearish = make_context(settings, ret5=-0.007, ret20=-0.012, rsi14=52, sma20=99, sma60=101, price=20)
    for ctx in (normal, bearish):
        out = decide(settings, ctx, portfolio(100_000), trader=trader, cycle=8)
        head = out.record["decisions"][0]
        assert (head["action"], head["quantity"]) == ("buy", 100)
        assert "conservative probe-entry" in head["reasoning"]
    too_early = decide(settings, normal, portfolio(100_000), trader=trader, cycle=7)
    assert too_early.fill["action"] == "hold"
    no_bearish = settings.replace(agent_conservative_probe_allow_bearish=False)
    assert decide(no_bearish, bearish, portfolio(100_000), trader=trader, cycle=8).fill["action"] == "hold"


def test_unaffordable_buy_becomes_successful_hold(settings):
    rules = settings.replace(agent_portfolio_max_symbol_concentration_pct=1.0)
    ctx = make_context(rules, ret5=0.005, rsi14=55, sma20=106, sma60=100, price=2000)
    out = decide(rules, ctx, portfolio(100_000, [{**HELD[0], "mark_price": 2000.0}]), cycle=15)
    head = out.record["decisions"][0]
    assert head["action"] == "hold" and head["success"] is True
    assert out.record["success"] is True and out.record["error_message"] == ""
    assert "insufficient cash for one lot" in head["reasoning"]


def test_opening_phase_caps_quantity_and_confidence(settings):
    rules = settings.replace(opening_phase_max_lots=1, opening_phase_max_confidence=0.62)
    ctx = make_context(rules, ret5=0.004, rsi14=58, sma20=106, sma60=100, price=108, opening_phase=True)
    llm = llm_decision("buy", "600519.SH", 0.93, 900, "opening move confirmation")
    head = decide(rules, ctx, portfolio(90_000, HELD), llm=llm, cycle=16).record["decisions"][0]
    assert head["action"] == "buy"
    assert head["requested_quantity"] == 100
    assert head["confidence"] == 0.62  # the model asked 0.93, the opening-phase cap is 0.62
    assert "opening-phase cap" in head["reasoning"]


def test_llm_selected_candidate_is_executed(settings):
    items = [
        {"symbol": "600519.SH", "latest_price": 108, "ret_5": 0.001, "ret_20": 0.002, "rank_score": 1},
        {"symbol": "300750.SZ", "latest_price": 220, "ret_5": -0.004, "ret_20": -0.008, "rank_score": 2},
    ]
    ctx = make_context(settings, ret5=0.001, rsi14=56, sma20=106, sma60=100, price=108, items=items)
    pf = portfolio(90_000, [{"symbol": "300750.SZ", "shares": 200, "avg_cost": 230.0, "mark_price": 220.0}])
    llm = llm_decision("sell", "300750.SZ", 0.77, 100, "候选股走弱，优先减仓。")
    out = decide(settings, ctx, pf, llm=llm, cycle=17)
    head = out.record["decisions"][0]
    assert (head["symbol"], head["action"], head["quantity"]) == ("300750.SZ", "sell", 100)
    assert out.record["candidate_coins"] == ["600519.SH", "300750.SZ"]
    assert out.record["decision_source"] == "llm.openai" and out.fill["source"] == "llm.openai"
    assert out.record["cot_trace"] == "候选股走弱，优先减仓。"


def test_max_position_count_blocks_new_buy(settings):
    rules = settings.replace(agent_portfolio_max_position_count=3)
    ctx = make_context(rules, ret5=0.003, rsi14=55, sma20=106, sma60=100, price=108)
    pf = portfolio(90_000, [
        {"symbol": "000001.SZ", "shares": 100, "avg_cost": 10.0},
        {"symbol": "300750.SZ", "shares": 100, "avg_cost": 220.0},
        {"symbol": "601318.SH", "shares": 100, "avg_cost": 50.0},
    ])
    head = decide(rules, ctx, pf, llm=llm_decision("buy", "600519.SH", 0.8, 300, "尝试开新仓。"), cycle=18).record["decisions"][0]
    assert head["action"] == "hold"
    assert "max position count" in head["reasoning"]


def test_concentration_and_reserve_clip_quantity(settings):
    rules = settings.replace(
        agent_portfolio_max_symbol_concentration_pct=0.2,
        agent_portfolio_min_cash_reserve_pct=0.5,
        agent_portfolio_turnover_throttle_pct=1.0,
    )
    ctx = make_context(rules, ret5=0.004, rsi14=58, sma20=106, sma60=100, price=100)
    llm = llm_decision("buy", "600519.SH", 0.82, 1000, "放量突破，计划加仓。")
    head = decide(rules, ctx, portfolio(100_000), llm=llm, cycle=19).record["decisions"][0]
    assert head["action"] == "buy"
    assert head["requested_quantity"] == 200 and head["quantity"] == 200
    assert "concentration" in head["reasoning"] or "cash reserve" in head["reasoning"]


def test_turnover_throttle_clips_oversized_sell(settings):
    rules = settings.replace(agent_portfolio_turnover_throttle_pct=0.1)
    ctx = make_context(rules, ret5=-0.004, rsi14=74, sma20=99, sma60=101, price=100)
    pf = portfolio(0, [{"symbol": "600519.SH", "shares": 1000, "avg_cost": 95.0, "mark_price": 100.0}])
    llm = llm_decision("sell", "600519.SH", 0.84, 800, "风险上升，计划快速降仓。")
    head = decide(rules, ctx, pf, llm=llm, cycle=20).record["decisions"][0]
    assert head["action"] == "sell"
    assert head["requested_quantity"] == 100 and head["quantity"] == 100
    assert "turnover throttle" in head["reasoning"]


def test_a_symbol_outside_the_candidates_falls_back_to_the_focus(settings):
    ctx = make_context(settings, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=108)
    out = decide(settings, ctx, portfolio(90_000), llm=llm_decision("buy", "999999.SH", 0.7, 100, "x"))
    assert out.fill["symbol"] == "600519.SH" and out.fill["executed"] is True
