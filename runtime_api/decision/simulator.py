"""Order simulation: guardrails, then an immediate fill in a virtual long-only market.

Differences from the Node runtime, all deliberate (reference W7, W8, W9): T+1 for CN, odd lots
can be sold, a minimum commission and CN stamp duty, affordability includes fees, a missing
price is a hold (never a literal 100), every order id is unique, every holding is marked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from runtime_api.decision import exits, heuristic, records
from runtime_api.decision.context import runtime_config
from runtime_api.decision.costs import affordable_quantity, commission, round2, sell_quantity, to_lots
from runtime_api.decision.features import js_round, number
from runtime_api.decision.llm import LlmDecision
from runtime_api.market.sanity import usable_price
from runtime_api.settings import Settings


@dataclass
class DecisionOutcome:
    """What one cycle produced: the decision record, the fill to book and the audit fields."""

    record: dict[str, Any]
    fill: dict[str, Any]
    audit_fields: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Order:
    """One decision on its way through the guardrails to a fill."""

    symbol: str
    price: float | None
    features: dict[str, Any]
    source: str  # "llm.openai" | "rule.heuristic" | "readiness_gate"
    given: dict[str, Any] | None  # the model's or the readiness gate's decision, if any
    original_action: str
    action: str = "hold"
    confidence: float = 0.0
    requested: int = 0
    guard: str | None = None  # the guardrail that turned the action into a hold, for the reasoning
    entry: str | None = None  # "flat" | "probe": a starter buy that replaced a hold
    exit: exits.Exit | None = None  # a stop, target or reversion exit that replaced the decision
    cash_guard: bool = False
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    executed: bool = False
    filled: int = 0
    notional: float = 0.0
    commission: float = 0.0
    stamp_duty: float = 0.0
    realized: float = 0.0


@dataclass
class Book:
    """The account as the simulation sees it: cash and holdings keyed by symbol."""

    cash: float
    holdings: dict[str, dict]
    sellable: dict[str, int] | None
    t_plus_one: bool

    def shares(self, symbol: str) -> int:
        return self.holdings[symbol]["shares"] if symbol in self.holdings else 0

    def sellable_shares(self, symbol: str) -> int:
        if not self.t_plus_one or self.sellable is None:
            return self.shares(symbol)
        return min(self.shares(symbol), int(number(self.sellable.get(symbol)) or 0))

    def equity(self) -> float:
        return round2(self.cash + sum(h["mark_price"] * h["shares"] for h in self.holdings.values()))


def _book(portfolio: dict, rules: dict) -> Book:
    holdings = {}
    for h in portfolio.get("holdings") or []:
        shares = int(number(h.get("shares")) or 0)
        if shares <= 0 or not h.get("symbol"):
            continue
        avg = number(h.get("avg_cost")) or 0.0
        mark = number(h.get("mark_price"))
        holdings[h["symbol"]] = {
            "symbol": h["symbol"], "shares": shares, "avg_cost": avg, "mark_price": avg if mark is None else mark,
        }
    cash = max(0.0, number(portfolio.get("cash")) or 0.0)
    return Book(cash, holdings, portfolio.get("sellable"), bool(rules["t_plus_one"]))


def _order(context: dict, llm: LlmDecision | None, trader: dict) -> Order:
    """Which decision applies (readiness gate, model, rules), on which symbol, at which price."""
    gate = context.get("llm_decision")
    if gate and gate.get("source") == "readiness_gate":
        given, source = gate, "readiness_gate"
    elif llm is not None:
        given, source = llm.as_dict(), "llm.openai"
    else:
        given, source = None, "rule.heuristic"
    cand = context.get("candidate_set") or {}
    items = {i["symbol"]: i for i in cand.get("items") or [] if i.get("symbol")}
    symbols = list(cand.get("symbols") or items) or [context.get("symbol")]
    focus = context.get("symbol")
    wanted = str((given or {}).get("symbol") or focus or symbols[0]).strip()
    symbol = wanted if wanted in symbols else (focus if focus in symbols else symbols[0])
    item = items.get(symbol)
    price = number(item.get("latest_price")) if item else None
    if not price and symbol == focus:
        price = number(context.get("latest_price"))
    features = dict(item) if item else heuristic.context_features(context)
    if given:
        action = str(given.get("action") or "hold").lower()
    else:
        action = heuristic.decide_action(heuristic.signals(features), heuristic.profile(trader))
    return Order(
        symbol=symbol,
        price=price if usable_price(price) else None,  # never fill at a feed error
        features=features,
        source=source,
        given=given,
        original_action=action,
        action=action if action in ("buy", "sell", "hold") else "hold",
    )


def _probe_entry(s: heuristic.Signals, settings: Settings) -> bool:
    normal = (
        not s.bearish
        and s.rsi <= min(72.0, max(35.0, settings.agent_conservative_probe_max_rsi))
        and (
            s.ret5 <= settings.agent_conservative_probe_ret5_max
            or s.ret20 <= settings.agent_conservative_probe_ret20_max
        )
    )
    bearish = (
        settings.agent_conservative_probe_allow_bearish
        and s.bearish
        and s.rsi <= settings.agent_conservative_probe_bearish_max_rsi
        and (
            s.ret5 <= settings.agent_conservative_probe_bearish_ret5_max
            or s.ret20 <= settings.agent_conservative_probe_bearish_ret20_max
        )
    )
    return normal or bearish


def _exit(order: Order, book: Book, rules: dict, p: heuristic.Profile, settings: Settings) -> None:
    """A sellable holding past its announced stop or target (or a completed reversion): sell it all."""
    if order.source == "readiness_gate" or order.action == "sell" or order.price is None:
        return
    if order.symbol not in book.holdings:
        return
    found = exits.find_exit(
        symbol=order.symbol, mark=order.price, holding=book.holdings[order.symbol],
        sellable=book.sellable_shares(order.symbol), features=order.features, profile=p, rules=rules,
        rule_decision=order.source == "rule.heuristic",
        announced=settings.agent_announced_exit_enabled, reversion=settings.agent_reversion_exit_enabled,
    )
    if found is not None:
        order.action, order.exit = "sell", found


def _gate_action(order: Order, book: Book, rules: dict, p: heuristic.Profile, settings: Settings, cycle: int) -> None:
    """No price, no shares, T+1 lock: hold. Flat-entry or the conservative probe: a starter buy."""
    if order.price is None:
        order.action, order.guard, order.error = "hold", "no_price", "no_price"
    elif order.action == "sell" and book.shares(order.symbol) <= 0:
        order.action, order.guard = "hold", "no_shares"
    elif order.action == "sell" and book.sellable_shares(order.symbol) <= 0:
        order.action, order.guard, order.error = "hold", "t_plus_one", "t_plus_one_locked"
    if order.source == "readiness_gate" or order.price is None or book.holdings or order.action != "hold":
        return
    s = heuristic.signals(order.features)
    if (
        rules.get("flat_entry_enabled")
        and cycle >= settings.agent_flat_entry_min_cycles
        and not s.bearish
        and s.rsi <= min(85.0, max(50.0, settings.agent_flat_entry_max_rsi))
    ):
        order.action, order.entry = "buy", "flat"
    elif (
        rules.get("conservative_probe_enabled")
        and (p.style, p.risk) == ("mean_reversion", "conservative")
        and cycle >= settings.agent_conservative_probe_min_cycles
        and _probe_entry(s, settings)
    ):
        order.action, order.entry = "buy", "probe"


def _size(order: Order, rules: dict, p: heuristic.Profile, settings: Settings) -> None:
    """Confidence and requested quantity, in lots, with the opening-phase caps."""
    lot = int(rules["lot_size"])
    s = heuristic.signals(order.features)
    given_conf = number((order.given or {}).get("confidence"))
    if given_conf is not None:
        order.confidence = js_round(min(0.95, max(0.51, given_conf)), 2)
    else:
        order.confidence = heuristic.confidence(s, order.action, p)
    opening = bool(rules.get("opening_phase_mode"))
    if opening:
        order.confidence = js_round(min(order.confidence, opening_max_confidence(rules, settings)), 2)
    given_qty = number((order.given or {}).get("quantity"))
    if order.entry == "probe":
        qty = lot * settings.agent_conservative_probe_lots
    elif order.entry == "flat":
        qty = lot * settings.agent_flat_entry_lots
    elif given_qty is not None:
        qty = max(0, math.floor(given_qty))
    else:
        qty = heuristic.base_quantity(order.action, lot, order.confidence, p)
    order.requested = 0 if order.action == "hold" else to_lots(qty, lot)
    if order.exit is not None:  # the whole position, odd remainder included (sell_quantity allows it)
        order.requested = order.exit.shares
    if opening and order.action != "hold" and order.requested > 0:
        order.requested = min(order.requested, lot * opening_max_lots(rules, settings))


def opening_max_confidence(rules: dict, settings: Settings) -> float:
    return min(0.95, max(0.51, float(rules.get("opening_phase_max_confidence", settings.opening_phase_max_confidence))))


def opening_max_lots(rules: dict, settings: Settings) -> int:
    return max(1, int(rules.get("opening_phase_max_lots", settings.opening_phase_max_lots)))


def _guardrails(order: Order, book: Book, rules: dict) -> None:
    """Affordability, turnover, position count, concentration, cash reserve: clip or hold (Node order)."""
    lot, price, symbol = int(rules["lot_size"]), order.price, order.symbol
    if price is None:
        return
    book.holdings.setdefault(symbol, {"symbol": symbol, "shares": 0, "avg_cost": price, "mark_price": price})
    book.holdings[symbol]["mark_price"] = price
    equity = book.equity()
    held = [h for h in book.holdings.values() if h["shares"] > 0]
    shares = book.shares(symbol)

    def hold(note: str | None = None) -> None:
        order.action, order.requested = "hold", 0
        if note:
            order.notes.append(note)

    def clip(limit: int, note: str) -> None:
        order.requested = limit
        order.notes.append(f"{note} clipped quantity to {limit}")

    if order.action == "buy" and order.requested > 0 and affordable_quantity(book.cash, price, lot, rules) <= 0:
        hold()
        order.cash_guard = True
    if order.action != "hold" and order.requested > 0:
        max_notional = max(0.0, equity * float(rules["turnover_throttle_pct"]))
        max_shares = max_notional / max(price, 0.0001)
        if order.action == "sell":  # compare what would really be sold, odd remainder included
            sellable = book.sellable_shares(symbol)
            wanted = sell_quantity(order.requested, shares, sellable, lot)
            limit = sell_quantity(math.floor(max_shares + 1e-9), shares, sellable, lot)
        else:
            wanted, limit = order.requested, to_lots(max_shares, lot)
        if limit <= 0:
            hold(f"turnover throttle disabled order (max_notional={max_notional:.2f})")
        elif wanted > limit:
            clip(limit, "turnover throttle")
    max_positions = int(rules["max_position_count"])
    if order.action == "buy" and order.requested > 0 and shares <= 0 and len(held) >= max_positions:
        hold(f"max position count reached ({len(held)}/{max_positions})")
    if order.action == "buy" and order.requested > 0:
        pct = float(rules["max_symbol_concentration_pct"])
        limit = to_lots(max(0.0, equity * pct - round2(shares * price)) / max(price, 0.0001), lot)
        if limit <= 0:
            hold(f"symbol concentration limit reached ({pct:.2f})")
        elif order.requested > limit:
            clip(limit, "concentration")
    if order.action == "buy" and order.requested > 0:
        pct = float(rules["min_cash_reserve_pct"])
        limit = affordable_quantity(max(0.0, book.cash - equity * pct), price, lot, rules)
        if limit <= 0:
            hold(f"min cash reserve prevents entry ({pct:.2f})")
        elif order.requested > limit:
            clip(limit, "cash reserve")
    if order.action == "buy" and order.requested > 0 and affordable_quantity(book.cash, price, lot, rules) <= 0:
        hold()
        order.cash_guard = True


def _fill(order: Order, book: Book, rules: dict) -> None:
    """Fill at the order's price; fees are commission (with its minimum) plus CN stamp duty on sells."""
    lot, price = int(rules["lot_size"]), order.price
    if order.action == "buy":
        order.filled = min(order.requested, affordable_quantity(book.cash, price, lot, rules))
        if order.filled <= 0:
            order.filled, order.error = 0, "insufficient_cash" if order.requested > 0 else "invalid_quantity"
            return
        order.notional = round2(order.filled * price)
        order.commission = commission(order.notional, rules)
        h = book.holdings[order.symbol]
        total = h["shares"] + order.filled
        h["avg_cost"] = js_round((h["shares"] * h["avg_cost"] + order.notional) / total, 4)
        h["shares"] = total
        book.cash = round2(max(0.0, book.cash - order.notional - order.commission))
        order.executed = True
    elif order.action == "sell":
        shares = book.shares(order.symbol)
        order.filled = sell_quantity(order.requested, shares, book.sellable_shares(order.symbol), lot)
        if order.filled <= 0:
            order.filled, order.error = 0, "insufficient_shares" if order.requested > 0 else "invalid_quantity"
            return
        h = book.holdings[order.symbol]
        order.notional = round2(order.filled * price)
        order.commission = commission(order.notional, rules)
        order.stamp_duty = round2(order.notional * float(rules["stamp_duty_rate"]))
        fee = order.commission + order.stamp_duty
        order.realized = round2((price - js_round(h["avg_cost"], 4)) * order.filled - fee)
        h["shares"] -= order.filled
        book.cash = round2(book.cash + order.notional - fee)
        order.executed = True
    book.holdings = {k: h for k, h in book.holdings.items() if h["shares"] > 0}


def _reasoning(
    order: Order, context: dict, rules: dict, p: heuristic.Profile, settings: Settings, book: Book, flat: bool
) -> str:
    """The model's or the rules' reasoning, prefixed by whichever guardrail changed the order."""
    s = heuristic.signals(order.features)
    lot, symbol = int(rules["lot_size"]), order.symbol
    text = (order.given or {}).get("reasoning") or heuristic.reasoning(
        order.action,
        s,
        p,
        overview_brief=(context.get("market_overview") or {}).get("brief", ""),
        news_titles=(context.get("news_digest") or {}).get("titles"),
    )
    if order.notes:
        text = f"guardrail: {'; '.join(order.notes)}. {text}"
    if order.cash_guard:
        text = (
            f"guardrail: skip buy on {symbol}, insufficient cash for one lot "
            f"(lot={lot}, cash={book.cash:.2f}, price={order.price:.2f}). {text}"
        )
    elif order.entry == "probe":
        text = (
            f"conservative probe-entry -> starter buy {lot * settings.agent_conservative_probe_lots} shares on "
            f"pullback (ret5={s.ret5:.4f}, ret20={s.ret20:.4f}, rsi={s.rsi:.1f}). {text}"
        )
    elif order.entry == "flat":
        text = f"flat-entry (in cash too long) -> starter buy {lot * settings.agent_flat_entry_lots} shares. {text}"
    elif order.exit is not None:
        text = f"{order.exit.reason}. {text}"
    elif order.guard == "no_shares" and order.original_action == "sell":
        where = "while flat (no shares)" if flat else f"without holdings on {symbol}"
        text = f"guardrail: ignore sell {where}. {text}"
    elif order.guard == "t_plus_one":
        text = f"guardrail: T+1, {symbol} shares bought today cannot be sold before the next trading day. {text}"
    elif order.guard == "no_price":
        text = f"guardrail: no price for {symbol}, hold. {text}"
    if rules.get("opening_phase_mode") and order.action != "hold":
        max_lots, max_conf = opening_max_lots(rules, settings), opening_max_confidence(rules, settings)
        text = f"opening-phase cap (max {max_lots} lot, conf<={max_conf:.2f}). {text}"
    return text


def create_decision(
    *,
    context: dict,
    trader: dict,
    llm: LlmDecision | None,
    llm_failure: str | None,
    portfolio: dict,
    settings: Settings,
    cycle_number: int,
    now_iso: str,
    now_ms: int,
    llm_skip_reason: str | None = None,
    breaker_state: str | None = None,
    llm_latency_ms: int | None = None,
) -> DecisionOutcome:
    """Apply the guardrails (reference §4.4 order, plus T+1) to one decision and fill it."""
    rules = {**runtime_config(settings, context.get("market") or "CN-A"), **(context.get("runtime_config") or {})}
    p = heuristic.profile(trader)
    book = _book(portfolio, rules)
    flat = not book.holdings
    order = _order(context, llm, trader)
    _exit(order, book, rules, p, settings)
    _gate_action(order, book, rules, p, settings, cycle_number)
    _size(order, rules, p, settings)
    _guardrails(order, book, rules)
    _fill(order, book, rules)
    text = _reasoning(order, context, rules, p, settings, book, flat)
    llm_info = {
        "used": order.source == "llm.openai",
        "model": llm.model if llm is not None else (settings.decision_model if settings.llm_configured else None),
        "failure_reason": llm_failure,
        "skip_reason": llm_skip_reason,
        "breaker": breaker_state,
        "latency_ms": llm_latency_ms,
    }
    record, fill, audit = records.build(
        order=order, book=book, context=context, trader=trader, profile=p, text=text,
        cycle_number=cycle_number, now_iso=now_iso, llm_info=llm_info,
    )
    return DecisionOutcome(record=record, fill=fill, audit_fields=audit, context=context)


def close_position_fill(*, portfolio: dict, symbol: str, price: float, settings: Settings, market: str,
                        now_iso: str, order_id: str) -> dict[str, Any]:
    """An operator's close: one sell of every sellable share of `symbol` at `price`, through the same
    fill as an agent's sell (lots, commission minimum, stamp duty, T+1); no guardrail clips it.

    Returns the fill for `portfolio.apply_decision` plus `held_shares` and `locked_shares` (bought
    today under T+1, still held afterwards)."""
    rules = runtime_config(settings, market)
    book = _book(portfolio, rules)
    held = book.shares(symbol)
    order = Order(symbol=symbol, price=price, features={}, source="operator.close_position", given=None,
                  original_action="sell", action="sell", requested=held)
    if held > 0 and book.sellable_shares(symbol) <= 0:
        order.error = "t_plus_one_locked"
    else:
        _fill(order, book, rules)
    return {
        "action": "sell", "symbol": symbol, "executed": order.executed, "requested_quantity": held,
        "filled_quantity": order.filled, "price": price, "notional": order.notional,
        "commission": order.commission, "stamp_duty": order.stamp_duty,
        "fee": round2(order.commission + order.stamp_duty), "realized_pnl": order.realized,
        "order_id": order_id, "ts": now_iso, "source": order.source, "error": order.error,
        "held_shares": held, "locked_shares": held - order.filled,
    }
