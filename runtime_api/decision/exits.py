"""Exits for a holding that can be sold today, judged before the guardrails.

Node announced a stop and a target on every buy (price x0.985 and x1.02) and never acted on them,
and its mean-reversion rule only sold on an overbought RSI or a counter-trend spike, so on a calm
day a pullback buyer never left a position. Two exits close that gap:

* announced exit: the mark at or below the holding's stop, or at or above its target, both taken
  from the average cost exactly as the buy record announced them;
* reversion exit (mean_reversion style, rule decisions only): the price is at or above its 20-day
  mean. A reversion trader's edge is the distance below the mean; once the price is back there
  the trade is done, whatever it realises (the textbook exit, e.g. Connors' "close above the
  moving average"). The reasoning states what the sale realises after fees.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime_api.decision import heuristic
from runtime_api.decision.costs import commission, round2
from runtime_api.decision.features import js_round

# The levels records.py announces on a buy.
STOP_FACTOR = 0.985
TARGET_FACTOR = 1.02


@dataclass(frozen=True)
class Exit:
    kind: str  # "stop_loss" | "take_profit" | "reversion"
    reason: str
    shares: int  # the whole position; the fill sells what T+1 allows of it


def announced_levels(avg_cost: float) -> tuple[float, float]:
    """(stop, target) as the buy's record announced them (2 decimals)."""
    return js_round(avg_cost * STOP_FACTOR, 2), js_round(avg_cost * TARGET_FACTOR, 2)


def realised_pnl(avg_cost: float, mark: float, shares: int, rules: dict) -> float:
    """What selling `shares` at `mark` books as realised P&L, as the fill computes it: the gain on
    the average cost less the sell's commission and stamp duty."""
    notional = round2(mark * shares)
    fee = commission(notional, rules) + round2(notional * float(rules.get("stamp_duty_rate") or 0.0))
    return round2((mark - js_round(avg_cost, 4)) * shares - fee)


def find_exit(
    *,
    symbol: str,
    mark: float,
    holding: dict,
    sellable: int,
    features: dict,
    profile: heuristic.Profile,
    rules: dict,
    rule_decision: bool,
    announced: bool,
    reversion: bool,
) -> Exit | None:
    """The exit that applies to this holding at `mark`, or None (also when nothing is sellable)."""
    avg = float(holding.get("avg_cost") or 0.0)
    if sellable <= 0 or avg <= 0 or mark <= 0:
        return None
    if announced:
        stop, target = announced_levels(avg)
        if mark <= stop:
            return Exit("stop_loss", f"announced exit: {symbol} at {mark:.2f} reached its stop {stop:.2f} "
                                     f"(avg cost {avg:.2f} x{STOP_FACTOR}), sell", int(holding.get("shares") or 0))
        if mark >= target:
            return Exit("take_profit", f"announced exit: {symbol} at {mark:.2f} reached its target {target:.2f} "
                                       f"(avg cost {avg:.2f} x{TARGET_FACTOR}), sell", int(holding.get("shares") or 0))
    if reversion and rule_decision and profile.style == "mean_reversion":
        s = heuristic.signals(features)
        if s.sma20 > 0 and mark >= s.sma20:
            pnl = realised_pnl(avg, mark, sellable, rules)
            return Exit("reversion", f"reversion exit: {symbol} at {mark:.2f} is at or above its 20-day mean "
                                     f"{s.sma20:.2f}, no reversion edge left, sell (realises {pnl:.2f} after fees "
                                     f"on avg cost {avg:.2f})", int(holding.get("shares") or 0))
    return None
