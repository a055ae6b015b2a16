"""Exits Node never had: the announced stop/target enforced, and the mean-reversion exit at the mean."""

from __future__ import annotations

import re

from runtime_api.decision.simulator import create_decision

from .helpers import TRADER, make_context, portfolio
from .test_decision_runtime import llm_decision

REVERSION = {**TRADER, "agent_id": "demo_reversion", "trading_style": "mean_reversion", "risk_profile": "conservative"}


def run(settings, ctx, pf, *, trader=TRADER, llm=None):
    return create_decision(
        context=ctx, trader=trader, llm=llm, llm_failure=None, portfolio=pf, settings=settings,
        cycle_number=7, now_iso="2026-02-12T02:00:00.000Z", now_ms=0,
    )


def held(shares=100, sellable=None, avg=100.0):
    return portfolio(50_000, [{"symbol": "600519.SH", "shares": shares, "avg_cost": avg}],
                     sellable=None if sellable is None else {"600519.SH": sellable})


def quiet(settings, price, sma20=100.0):
    """No rule signal: the momentum and reversion rules both say hold at these features."""
    return make_context(settings, ret5=0.0, rsi14=50, sma20=sma20, sma60=sma20, price=price)


def test_a_holding_at_its_announced_stop_is_sold_whole(settings):
    out = run(settings, quiet(settings, 98.5), held(150))  # stop = 100 x 0.985 = 98.50; an odd lot too
    head = out.record["decisions"][0]
    assert (head["action"], out.fill["executed"], out.fill["filled_quantity"]) == ("sell", True, 150)
    assert head["reasoning"].startswith("announced exit: 600519.SH at 98.50 reached its stop 98.50")
    assert head["realized_pnl"] < 0 and out.record["account_state"]["position_count"] == 0


def test_a_holding_at_its_announced_target_is_sold(settings):
    out = run(settings, quiet(settings, 102.0), held())  # target = 100 x 1.02
    head = out.record["decisions"][0]
    assert (head["action"], out.fill["filled_quantity"]) == ("sell", 100)
    assert "reached its target 102.00" in head["reasoning"] and head["realized_pnl"] > 0


def test_a_holding_inside_its_band_is_kept(settings):
    for price in (98.51, 101.99):
        out = run(settings, quiet(settings, price, sma20=120.0), held(), trader=REVERSION)
        head = out.record["decisions"][0]
        assert head["action"] == "hold" and out.fill["executed"] is False
        assert "exit" not in head["reasoning"]


def test_t_plus_one_still_holds_an_exit_back(settings):
    locked = run(settings, quiet(settings, 97.0), held(100, sellable=0))
    head = locked.record["decisions"][0]
    assert head["action"] == "hold" and locked.fill["executed"] is False and "exit" not in head["reasoning"]
    wide = settings.replace(agent_portfolio_turnover_throttle_pct=1.0)
    part = run(wide, quiet(settings, 97.0), held(300, sellable=100))
    assert (part.fill["action"], part.fill["filled_quantity"]) == ("sell", 100)
    assert part.audit_fields["position_shares_on_symbol"] == 200  # the lot bought today stays


def test_the_stop_applies_to_a_model_decision_too(settings):
    out = run(settings, quiet(settings, 97.0), held(), llm=llm_decision("buy", "600519.SH", 0.8, 100, "add"))
    head = out.record["decisions"][0]
    assert (head["action"], out.fill["filled_quantity"]) == ("sell", 100)
    assert head["reasoning"].startswith("announced exit:") and head["reasoning"].endswith("add")


def test_exits_off_keep_node_behaviour(settings):
    off = settings.replace(agent_announced_exit_enabled=False, agent_reversion_exit_enabled=False)
    for trader in (TRADER, REVERSION):
        out = run(off, quiet(settings, 97.0), held(), trader=trader)
        assert out.record["decisions"][0]["action"] == "hold" and out.fill["executed"] is False


def test_mean_reversion_sells_once_back_at_its_mean(settings):
    out = run(settings, quiet(settings, 100.4, sma20=100.0), held(), trader=REVERSION)
    head = out.record["decisions"][0]
    assert (head["action"], out.fill["filled_quantity"]) == ("sell", 100)
    assert "is at or above its 20-day mean 100.00" in head["reasoning"]
    stated = float(re.search(r"realises (-?[0-9.]+) after fees", head["reasoning"]).group(1))
    assert stated == head["realized_pnl"]
    assert stated == 29.98  # 40 gain less the 5.00 minimum commission and 5.02 stamp duty


def test_mean_reversion_keeps_a_holding_below_its_mean(settings):
    out = run(settings, quiet(settings, 99.9, sma20=100.0), held(), trader=REVERSION)
    assert out.record["decisions"][0]["action"] == "hold" and out.fill["executed"] is False


def test_the_reversion_exit_is_the_rule_engine_s_not_the_model_s_nor_other_styles(settings):
    ctx = quiet(settings, 100.3, sma20=100.0)
    model = run(settings, ctx, held(), trader=REVERSION, llm=llm_decision("hold", "600519.SH", 0.6, 0, "wait"))
    assert model.record["decisions"][0]["action"] == "hold"
    momentum = run(settings, ctx, held(), trader=TRADER)
    assert momentum.record["decisions"][0]["action"] == "hold"


def test_no_exit_without_a_holding_or_when_readiness_forces_a_hold(settings):
    flat = run(settings, quiet(settings, 97.0), portfolio(50_000))
    assert flat.record["decisions"][0]["action"] != "sell"
    ctx = quiet(settings, 97.0)
    ctx["llm_decision"] = {"source": "readiness_gate", "action": "hold", "symbol": "600519.SH", "confidence": 0.51,
                           "quantity": 0, "reasoning": "data readiness ERROR: x"}
    gated = run(settings, ctx, held())
    assert gated.record["decisions"][0]["action"] == "hold" and gated.fill["executed"] is False
