"""The rule-based policy used when there is no LLM decision (Node `decideAction` and friends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime_api.decision.features import js_round, number
from runtime_api.settings import Settings

STYLES = ("momentum_trend", "mean_reversion", "event_driven", "macro_swing", "balanced")
RISKS = ("conservative", "balanced", "aggressive")

# Signal thresholds per style: (sell rule, buy rule) inputs. momentum_trend and balanced share one set.
MOMENTUM = {
    "sell_ret5": -0.0014, "sell_ret20": -0.003, "sell_rsi": 72,
    "buy_ret5": 0.0012, "buy_ret20": 0.003, "buy_max_rsi": 72,
}
MEAN_REVERSION = {
    "sell_rsi": 72, "sell_ret5_countertrend": 0.0032,
    "buy_ret5": -0.0022, "buy_rsi": 47, "deep_ret20": -0.0045, "deep_rsi": 42,
}
EVENT_DRIVEN = {
    "sell_vol": 1.35, "sell_ret5": -0.003, "sell_ret20": -0.004, "sell_rsi": 73,
    "buy_vol": 1.2, "buy_ret5": 0.0022, "buy_ret20": 0.004, "buy_max_rsi": 70,
}
MACRO_SWING = {
    "sell_rsi": 75, "sell_ret20": -0.006, "sell_ret5": -0.0045,
    "buy_min_rsi": 44, "buy_max_rsi": 70, "buy_min_ret20": -0.002,
}


@dataclass(frozen=True)
class Profile:
    style: str
    risk: str


def profile(trader: dict) -> Profile:
    """Trading style (explicit, else inferred from the strategy name) and risk profile."""
    style = str(trader.get("trading_style") or "").strip().lower()
    if not style:
        strategy = str(trader.get("strategy_name") or "").strip().lower()
        if "momentum" in strategy:
            style = "momentum_trend"
        elif "reversion" in strategy or "value" in strategy:
            style = "mean_reversion"
        elif "event" in strategy:
            style = "event_driven"
        elif "macro" in strategy:
            style = "macro_swing"
        else:
            style = "balanced"
    risk = str(trader.get("risk_profile") or "").strip().lower()
    return Profile(style, risk if risk in RISKS else "balanced")


@dataclass(frozen=True)
class Signals:
    ret5: float
    ret20: float
    vol_ratio: float
    rsi: float
    sma20: float
    sma60: float

    @property
    def bullish(self) -> bool:
        return self.sma20 > 0 and self.sma60 > 0 and self.sma20 >= self.sma60

    @property
    def bearish(self) -> bool:
        return self.sma20 > 0 and self.sma60 > 0 and self.sma20 < self.sma60


def signals(features: dict) -> Signals:
    """Signals from a flat feature dict (a candidate item) with the Node defaults for gaps."""

    def get(key: str, default: float) -> float:
        value = number(features.get(key))
        return default if value is None else value

    return Signals(
        ret5=get("ret_5", 0.0),
        ret20=get("ret_20", 0.0),
        vol_ratio=get("vol_ratio_20", 1.0),
        rsi=get("rsi_14", 50.0),
        sma20=get("sma_20", 0.0),
        sma60=get("sma_60", 0.0),
    )


def context_features(ctx: dict) -> dict[str, Any]:
    """Flatten a symbol context's intraday and daily feature snapshots into one dict."""
    return {
        **((ctx.get("intraday") or {}).get("feature_snapshot") or {}),
        **((ctx.get("daily") or {}).get("feature_snapshot") or {}),
    }


def decide_action(s: Signals, p: Profile) -> str:
    if p.style == "mean_reversion":
        t = MEAN_REVERSION
        if s.rsi >= t["sell_rsi"] or (s.ret5 >= t["sell_ret5_countertrend"] and not s.bullish):
            return "sell"
        if (s.ret5 <= t["buy_ret5"] and s.rsi <= t["buy_rsi"] and not s.bearish) or (
            s.ret20 <= t["deep_ret20"] and s.rsi <= t["deep_rsi"]
        ):
            return "buy"
        return "hold"
    if p.style == "event_driven":
        t = EVENT_DRIVEN
        if s.vol_ratio >= t["sell_vol"] and (
            s.ret5 <= t["sell_ret5"] or s.ret20 <= t["sell_ret20"] or s.bearish or s.rsi >= t["sell_rsi"]
        ):
            return "sell"
        if (
            s.vol_ratio >= t["buy_vol"]
            and (s.ret5 >= t["buy_ret5"] or s.ret20 >= t["buy_ret20"])
            and s.bullish
            and s.rsi <= t["buy_max_rsi"]
        ):
            return "buy"
        return "hold"
    if p.style == "macro_swing":
        t = MACRO_SWING
        if s.bearish or s.rsi >= t["sell_rsi"] or s.ret20 <= t["sell_ret20"] or s.ret5 <= t["sell_ret5"]:
            return "sell"
        if s.bullish and t["buy_min_rsi"] <= s.rsi <= t["buy_max_rsi"] and s.ret20 >= t["buy_min_ret20"]:
            return "buy"
        return "hold"
    t = MOMENTUM
    if s.ret5 <= t["sell_ret5"] or s.ret20 <= t["sell_ret20"] or s.rsi >= t["sell_rsi"] or s.bearish:
        return "sell"
    if (s.ret5 >= t["buy_ret5"] or s.ret20 >= t["buy_ret20"]) and s.bullish and s.rsi <= t["buy_max_rsi"]:
        return "buy"
    return "hold"


def confidence(s: Signals, action: str, p: Profile) -> float:
    """0.56 + min(0.2, |ret5|*18), plus style and risk adjustments, clamped to 0.51..0.92."""
    base = 0.56 + min(0.2, abs(s.ret5) * 18)
    if action == "buy" and s.rsi < 65:
        base += 0.04
    if action == "sell" and s.rsi > 70:
        base += 0.04
    base += {"event_driven": 0.02, "macro_swing": -0.01}.get(p.style, 0.0)
    base += {"conservative": -0.02, "aggressive": 0.02}.get(p.risk, 0.0)
    return js_round(min(0.92, max(0.51, base)), 2)


def base_quantity(action: str, lot_size: int, conf: float, p: Profile) -> int:
    """Lots by risk (aggressive 2, else 1), +1 lot at confidence >= 0.82 unless conservative."""
    if action == "hold":
        return 0
    lots = 2 if p.risk == "aggressive" else 1
    if p.style == "macro_swing" and p.risk != "aggressive":
        lots = 1
    if conf >= 0.82 and p.risk != "conservative":
        lots += 1
    return max(1, int(lot_size)) * max(1, lots)


def reasoning(action: str, s: Signals, p: Profile, *, overview_brief: str = "", news_titles: list | None = None) -> str:
    macro = []
    brief = str(overview_brief or "").strip()
    titles = [str(t).strip() for t in news_titles or [] if str(t or "").strip()][:2]
    if brief:
        macro.append(f"market={brief[:96]}")
    if titles:
        macro.append(f"news={' / '.join(titles)[:96]}")
    suffix = f" {'; '.join(macro)}" if macro else ""
    if action == "buy":
        return (
            f"{p.style} buy setup (ret5={s.ret5:.4f}, RSI={s.rsi:.1f}, SMA20={s.sma20:.2f}, "
            f"SMA60={s.sma60:.2f}, risk={p.risk}).{suffix}"
        )
    if action == "sell":
        return (
            f"{p.style} sell/risk-off setup (ret5={s.ret5:.4f}, RSI={s.rsi:.1f}, "
            f"trend {s.sma20:.2f} vs {s.sma60:.2f}, risk={p.risk}).{suffix}"
        )
    return f"{p.style} no strong edge (ret5={s.ret5:.4f}, RSI={s.rsi:.1f}, risk={p.risk}), hold.{suffix}"


def decide(ctx: dict, trader: dict, settings: Settings) -> dict[str, Any]:
    """The raw policy output for the context's focus symbol, before any guardrail."""
    p = profile(trader)
    s = signals(context_features(ctx))
    action = decide_action(s, p)
    conf = confidence(s, action, p)
    lot = int((ctx.get("constraints") or {}).get("lot_size") or 100)
    return {
        "action": action,
        "symbol": ctx.get("symbol"),
        "confidence": conf,
        "quantity": base_quantity(action, lot, conf, p),
        "reasoning": reasoning(
            action,
            s,
            p,
            overview_brief=(ctx.get("market_overview") or {}).get("brief", ""),
            news_titles=(ctx.get("news_digest") or {}).get("titles"),
        ),
    }
