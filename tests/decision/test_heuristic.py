"""The rule-based policy: per-style thresholds, confidence and sizing (reference §4.4 step 2)."""

from __future__ import annotations

import pytest

from runtime_api.decision import heuristic
from runtime_api.decision.heuristic import Profile, Signals, base_quantity, confidence, decide_action

from .helpers import make_context


def sig(ret5=0.0, ret20=0.0, vol=1.0, rsi=50.0, sma20=100.0, sma60=100.0) -> Signals:
    return Signals(ret5, ret20, vol, rsi, sma20, sma60)


@pytest.mark.parametrize(
    ("style", "signals", "action"),
    [
        ("momentum_trend", sig(ret5=0.004, rsi=58, sma20=105), "buy"),
        ("momentum_trend", sig(ret5=-0.004, rsi=40, sma20=106), "sell"),
        ("momentum_trend", sig(ret5=0.001, ret20=0.001, rsi=60, sma20=105), "hold"),
        ("balanced", sig(rsi=73, sma20=105), "sell"),
        ("mean_reversion", sig(ret5=-0.004, rsi=40, sma20=106), "buy"),
        ("mean_reversion", sig(ret20=-0.005, rsi=41, sma20=99, sma60=101), "buy"),
        ("mean_reversion", sig(ret5=0.004, rsi=60, sma20=99, sma60=101), "sell"),
        ("mean_reversion", sig(rsi=72, sma20=105), "sell"),
        ("event_driven", sig(ret5=0.003, vol=1.3, rsi=60, sma20=105), "buy"),
        ("event_driven", sig(ret5=0.003, vol=1.1, rsi=60, sma20=105), "hold"),  # no volume expansion
        ("event_driven", sig(ret5=-0.004, vol=1.5, rsi=50, sma20=105), "sell"),
        ("macro_swing", sig(ret20=0.0, rsi=55, sma20=105), "buy"),
        ("macro_swing", sig(rsi=55, sma20=99, sma60=101), "sell"),
        ("macro_swing", sig(ret20=-0.003, rsi=55, sma20=105), "hold"),
    ],
)
def test_style_thresholds(style, signals, action):
    assert decide_action(signals, Profile(style, "balanced")) == action


def test_confidence_formula_and_clamp():
    assert confidence(sig(ret5=0.004, rsi=58), "buy", Profile("momentum_trend", "balanced")) == 0.67
    assert confidence(sig(ret5=-0.005, rsi=78), "sell", Profile("balanced", "balanced")) == 0.69
    assert confidence(sig(ret5=0.05, rsi=50), "buy", Profile("event_driven", "aggressive")) == 0.84
    assert confidence(sig(ret5=0.0, rsi=80), "hold", Profile("macro_swing", "conservative")) == 0.53


def test_sizing_by_risk_style_and_confidence():
    assert base_quantity("hold", 100, 0.9, Profile("balanced", "balanced")) == 0
    assert base_quantity("buy", 100, 0.7, Profile("balanced", "balanced")) == 100
    assert base_quantity("buy", 100, 0.7, Profile("balanced", "aggressive")) == 200
    assert base_quantity("buy", 100, 0.85, Profile("balanced", "aggressive")) == 300
    assert base_quantity("buy", 100, 0.85, Profile("balanced", "conservative")) == 100
    assert base_quantity("buy", 100, 0.7, Profile("macro_swing", "balanced")) == 100
    assert base_quantity("buy", 1, 0.85, Profile("balanced", "balanced")) == 2


def test_profile_inferred_from_strategy_name():
    assert heuristic.profile({"strategy_name": "Mean reversion + support zones"}) == Profile("mean_reversion", "balanced")
    assert heuristic.profile({"strategy_name": "Macro swing", "risk_profile": "AGGRESSIVE "}).style == "macro_swing"
    assert heuristic.profile({"trading_style": "Event_Driven", "risk_profile": "weird"}) == Profile("event_driven", "balanced")


def test_decide_returns_the_raw_policy_output(settings):
    ctx = make_context(settings, ret5=0.004, rsi14=58, sma20=105, sma60=100, price=108)
    ctx["intraday"]["feature_snapshot"]["ret_5"] = 0.004
    out = heuristic.decide(ctx, {"trading_style": "momentum_trend", "risk_profile": "aggressive"}, settings)
    assert out["action"] == "buy" and out["symbol"] == "600519.SH" and out["quantity"] == 200
    assert out["confidence"] == 0.69 and out["reasoning"].startswith("momentum_trend buy setup")
