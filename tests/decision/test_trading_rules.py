"""Rules the Node runtime did not model (reference W7, W8, W9): T+1, odd lots, fees, no price, US."""

from __future__ import annotations

import json

import pytest

from runtime_api.decision.costs import affordable_quantity, sell_quantity
from runtime_api.decision.simulator import create_decision

from .helpers import TRADER, make_context, portfolio
from .test_decision_runtime import llm_decision

NOW_ISO = "2026-02-12T01:30:00.000Z"
RECORD_KEYS = {
    "timestamp", "cycle_number", "system_prompt", "input_prompt", "cot_trace", "decision_json",
    "decision_source", "account_state", "positions", "candidate_coins", "decisions", "execution_log",
    "success", "error_message", "reasoning_steps_cn", "llm",
}
FILL_KEYS = {
    "action", "symbol", "executed", "requested_quantity", "filled_quantity", "price", "notional",
    "commission", "stamp_duty", "fee", "realized_pnl", "order_id", "ts", "source", "error",
}
AUDIT_KEYS = {
    "schema_version", "timestamp", "cycle_number", "symbol", "action", "decision_source", "forced_hold",
    "order_executed", "position_shares_on_symbol", "hold_semantics", "data_readiness", "session_gate",
    "market_overview", "market_breadth", "news_digest",
}


def run(settings, ctx, pf, llm=None, trader=TRADER):
    return create_decision(
        context=ctx, trader=trader, llm=llm, llm_failure=None, portfolio=pf, settings=settings,
        cycle_number=5, now_iso=NOW_ISO, now_ms=0,
    )


def sell_ctx(settings, price=50.0, market="CN-A", symbol="600519.SH"):
    return make_context(settings, ret5=-0.004, rsi14=74, sma20=99, sma60=101, price=price, market=market, symbol=symbol)


def test_t_plus_one_blocks_a_same_day_sell(settings):
    pf = portfolio(10_000, [{"symbol": "600519.SH", "shares": 100, "avg_cost": 48.0}], sellable={"600519.SH": 0})
    out = run(settings, sell_ctx(settings), pf, llm=llm_decision("sell", "600519.SH", 0.8, 100, "cut"))
    head = out.record["decisions"][0]
    assert head["action"] == "hold" and head["error"] == "t_plus_one_locked"
    assert "T+1" in head["reasoning"]
    assert out.fill["executed"] is False and out.fill["error"] == "t_plus_one_locked"
    assert out.record["success"] is True and out.record["account_state"]["position_count"] == 1
    assert out.audit_fields["hold_semantics"] == "keep_existing_position"


def test_t_plus_one_limits_a_sell_to_sellable_shares(settings):
    settings = settings.replace(agent_portfolio_turnover_throttle_pct=1.0)
    pf = portfolio(10_000, [{"symbol": "600519.SH", "shares": 300, "avg_cost": 48.0}], sellable={"600519.SH": 100})
    out = run(settings, sell_ctx(settings), pf, llm=llm_decision("sell", "600519.SH", 0.8, 300, "cut"))
    assert (out.fill["action"], out.fill["filled_quantity"], out.fill["requested_quantity"]) == ("sell", 100, 300)
    assert out.audit_fields["position_shares_on_symbol"] == 200


def test_t_plus_one_can_be_turned_off(settings):
    rules = settings.replace(agent_t_plus_one=False)
    pf = portfolio(10_000, [{"symbol": "600519.SH", "shares": 100, "avg_cost": 48.0}], sellable={"600519.SH": 0})
    out = run(rules, sell_ctx(rules), pf, llm=llm_decision("sell", "600519.SH", 0.8, 100, "cut"))
    assert out.fill["executed"] is True and out.fill["filled_quantity"] == 100


def test_commission_minimum_on_a_small_buy(settings):
    ctx = make_context(settings, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=13.2)
    out = run(settings, ctx, portfolio(100_000), llm=llm_decision("buy", "600519.SH", 0.7, 100, "go"))
    fill = out.fill
    assert (fill["filled_quantity"], fill["notional"]) == (100, 1320.0)
    assert (fill["commission"], fill["stamp_duty"], fill["fee"]) == (5.0, 0.0, 5.0)  # 1320 * 0.0003 < 5
    assert out.record["account_state"]["available_balance"] == 100_000 - 1320 - 5
    assert out.record["execution_log"] == [f"{NOW_ISO} | HS300 Momentum -> BUY 600519.SH qty=100 @ 13.20 fee=5.00"]
    assert fill["order_id"].startswith("ord_") and fill["order_id"] == out.record["decisions"][0]["order_id"]


def test_stamp_duty_and_rate_commission_on_a_cn_sell(settings):
    rules = settings.replace(agent_portfolio_turnover_throttle_pct=1.0)
    pf = portfolio(0, [{"symbol": "600519.SH", "shares": 1000, "avg_cost": 45.0, "mark_price": 50.0}])
    out = run(rules, sell_ctx(rules), pf, llm=llm_decision("sell", "600519.SH", 0.8, 1000, "take profit"))
    fill = out.fill
    assert (fill["filled_quantity"], fill["notional"]) == (1000, 50_000.0)
    assert (fill["commission"], fill["stamp_duty"], fill["fee"]) == (15.0, 25.0, 40.0)
    assert fill["realized_pnl"] == (50 - 45) * 1000 - 40
    assert out.record["account_state"]["available_balance"] == 50_000 - 40
    assert out.record["positions"] == [] and out.audit_fields["position_shares_on_symbol"] == 0


def test_affordability_includes_fees(settings):
    rules = settings.replace(
        agent_portfolio_min_cash_reserve_pct=0.0,
        agent_portfolio_max_symbol_concentration_pct=1.0,
        agent_portfolio_turnover_throttle_pct=1.0,
    )
    ctx = make_context(rules, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=100)
    buy = llm_decision("buy", "600519.SH", 0.7, 100, "go")
    assert run(rules, ctx, portfolio(10_005), llm=buy).fill["filled_quantity"] == 100  # 10000 + 5 commission
    short = run(rules, ctx, portfolio(10_004.99), llm=buy)
    assert short.fill["action"] == "hold" and "insufficient cash for one lot" in short.record["decisions"][0]["reasoning"]


@pytest.mark.parametrize(
    ("requested", "shares", "sellable", "expected"),
    [
        (200, 150, 150, 150),  # the whole odd holding
        (100, 150, 150, 100),  # lots only, the odd 50 stays
        (100, 50, 50, 50),  # an odd remainder alone
        (300, 250, 150, 150),  # T+1 leaves 150 sellable: one lot plus the odd 50
        (300, 300, 0, 0),
    ],
)
def test_sell_quantity_allows_odd_lots(requested, shares, sellable, expected):
    assert sell_quantity(requested, shares, sellable, 100) == expected


def test_odd_lot_holding_can_be_sold(settings):
    pf = portfolio(0, [{"symbol": "600519.SH", "shares": 50, "avg_cost": 48.0}])
    rules = settings.replace(agent_portfolio_turnover_throttle_pct=1.0)
    out = run(rules, sell_ctx(rules), pf, llm=llm_decision("sell", "600519.SH", 0.8, 100, "exit odd lot"))
    assert out.fill["executed"] is True and out.fill["filled_quantity"] == 50


def test_affordable_quantity_respects_minimum_commission():
    rules = {"commission_rate": 0.0003, "min_commission": 5.0}
    assert affordable_quantity(10_005, 100, 100, rules) == 100
    assert affordable_quantity(10_004, 100, 100, rules) == 0
    assert affordable_quantity(1_000_000, 100, 100, rules) == 9900


def test_no_price_is_a_hold_never_a_literal_100(settings):
    ctx = make_context(settings, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=None)
    out = run(settings, ctx, portfolio(100_000), llm=llm_decision("buy", "600519.SH", 0.8, 100, "go"))
    head = out.record["decisions"][0]
    assert head["action"] == "hold" and head["error"] == "no_price" and head["price"] is None
    assert out.fill["error"] == "no_price" and out.fill["price"] is None and out.fill["order_id"] is None
    assert out.record["execution_log"][0].endswith("HOLD 600519.SH @ n/a (no order emitted)")
    assert out.record["account_state"]["total_balance"] == 100_000


def test_us_market_uses_one_share_lots_no_stamp_duty_no_t_plus_one(settings):
    ctx = make_context(settings, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=150.37, market="US", symbol="AAPL")
    out = run(settings, ctx, portfolio(10_000), llm=llm_decision("buy", "AAPL", 0.8, 7, "go"))
    assert out.fill["filled_quantity"] == 7 and out.fill["notional"] == 1052.59
    pf = portfolio(0, [{"symbol": "AAPL", "shares": 7, "avg_cost": 140.0}], sellable={"AAPL": 0})
    rules = settings.replace(agent_portfolio_turnover_throttle_pct=1.0)
    sell = run(rules, sell_ctx(rules, price=150.0, market="US", symbol="AAPL"), pf, llm=llm_decision("sell", "AAPL", 0.8, 7, "exit"))
    assert sell.fill["filled_quantity"] == 7 and sell.fill["stamp_duty"] == 0.0
    assert sell.fill["commission"] == 5.0


def test_every_holding_is_marked_and_order_ids_are_unique(settings):
    ctx = make_context(settings, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=108)
    pf = portfolio(50_000, [
        {"symbol": "600519.SH", "shares": 100, "avg_cost": 100.0, "mark_price": 107.0},
        {"symbol": "300750.SZ", "shares": 100, "avg_cost": 200.0, "mark_price": 230.0},
    ])
    settings = settings.replace(agent_announced_exit_enabled=False)  # 600519 is past its target: no exit here
    first = run(settings, ctx, pf)
    second = run(settings, ctx, pf)
    assert first.record["decisions"][0]["order_id"] != second.record["decisions"][0]["order_id"]
    marks = {p["symbol"]: p["mark_price"] for p in first.record["positions"]}
    assert marks == {"600519.SH": 108.0, "300750.SZ": 230.0}  # the traded symbol at the fill price
    state = first.record["account_state"]
    assert state["total_balance"] == round(state["available_balance"] + 200 * 108 + 100 * 230, 2)


def test_record_fill_and_audit_shapes(settings):
    ctx = make_context(settings, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=108)
    out = run(settings, ctx, portfolio(90_000))
    assert set(out.record) == RECORD_KEYS
    assert set(out.fill) == FILL_KEYS
    assert set(out.audit_fields) == AUDIT_KEYS
    head = out.record["decisions"][0]
    assert {"stop_loss", "take_profit"} <= set(head) and head["stop_loss"] == 106.38 and head["take_profit"] == 110.16
    assert json.loads(out.record["decision_json"]) == {"action": "buy", "symbol": "600519.SH"}
    assert out.record["llm"] == {"used": False, "model": None, "failure_reason": None, "skip_reason": None, "breaker": None,
                                 "latency_ms": None}
    assert out.audit_fields["hold_semantics"] is None and out.audit_fields["forced_hold"] is False
    json.dumps(out.record, allow_nan=False)
    json.dumps(out.audit_fields, allow_nan=False)
    hold = run(settings, make_context(settings, ret5=0.0, rsi14=50, sma20=100, sma60=100, price=108), portfolio(90_000))
    assert hold.fill["action"] == "hold" and "stop_loss" not in hold.record["decisions"][0]
    assert hold.audit_fields["hold_semantics"] == "no_position_no_order"
