"""Lot and fee arithmetic: whole lots, commission with its minimum, affordability, sellable shares."""

from __future__ import annotations

import math

from runtime_api.decision.features import js_round


def round2(value: float) -> float:
    return js_round(value, 2) or 0.0


def to_lots(quantity: float, lot: int) -> int:
    lot = max(1, int(lot))
    raw = max(0, math.floor(quantity + 1e-9))
    return (raw // lot) * lot


def commission(notional: float, rules: dict) -> float:
    if notional <= 0:
        return 0.0
    return round2(max(float(rules["min_commission"]), notional * float(rules["commission_rate"])))


def affordable_quantity(cash: float, price: float, lot: int, rules: dict) -> int:
    """The most shares, in lots, whose notional plus commission fits in `cash`."""
    if cash <= 0 or price <= 0:
        return 0
    rate, minimum = float(rules["commission_rate"]), float(rules["min_commission"])
    qty = to_lots(min(cash / (price * (1 + rate)), (cash - minimum) / price), lot)
    while qty > 0:
        notional = round2(qty * price)
        if notional + commission(notional, rules) <= cash + 1e-9:
            break
        qty -= lot
    return max(0, qty)


def sell_quantity(requested: int, shares: int, sellable: int, lot: int) -> int:
    """Whole lots, plus the position's odd remainder when the order covers it (exchange rule)."""
    available = max(0, min(requested, sellable))
    qty = to_lots(available, lot)
    odd = shares % max(1, lot)
    if odd and available - qty >= odd:
        qty += odd
    return qty
