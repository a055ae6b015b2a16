"""The three outputs of a decision: the record (§3.5), the fill to book, the audit fields (§3.6)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from runtime_api.decision import heuristic, reasoning
from runtime_api.decision.features import js_round
from runtime_api.ids import new_order_id

if TYPE_CHECKING:
    from runtime_api.decision.simulator import Book, Order

AUDIT_SCHEMA = "agent.decision_audit.v1"
RULE_ENGINE_PROMPT = "agent.market_context.rule_engine.v1"


def _r2(value: float) -> float:
    return js_round(value, 2) or 0.0


def positions(holdings: dict[str, dict]) -> list[dict]:
    rows = []
    for h in holdings.values():
        avg, mark, qty = h["avg_cost"], h["mark_price"], h["shares"]
        rows.append(
            {
                "symbol": h["symbol"],
                "side": "LONG",
                "entry_price": js_round(avg, 4),
                "mark_price": js_round(mark, 4),
                "quantity": qty,
                "leverage": 1,
                "unrealized_pnl": _r2((mark - avg) * qty),
                "unrealized_pnl_pct": js_round((mark - avg) / avg * 100, 4) if avg > 0 else 0,
                "liquidation_price": 0,
                "margin_used": 0,
            }
        )
    return rows


def _head(order: Order, text: str, order_id: str, now_iso: str) -> dict[str, Any]:
    head: dict[str, Any] = {
        "action": order.action,
        "symbol": order.symbol,
        "quantity": order.filled,
        "requested_quantity": order.requested,
        "executed": order.executed,
        "filled_quantity": order.filled,
        "filled_notional": order.notional,
        "fee_paid": _r2(order.commission + order.stamp_duty),
        "commission": order.commission,
        "stamp_duty": order.stamp_duty,
        "realized_pnl": order.realized,
        "leverage": 1,
        "price": js_round(order.price, 2) if order.price is not None else None,
    }
    if order.action != "hold" and order.price is not None:  # a buy's levels are enforced by decision/exits.py
        stop, take = (0.985, 1.02) if order.action == "buy" else (1.015, 0.98)
        head["stop_loss"] = js_round(order.price * stop, 2)
        head["take_profit"] = js_round(order.price * take, 2)
    head["confidence"] = order.confidence
    head["reasoning"] = text
    head["order_id"] = order_id
    head["timestamp"] = now_iso
    head["success"] = order.action == "hold" or order.executed
    if order.error:
        head["error"] = order.error
    return head


def _prompts(order: Order, context: dict, p: heuristic.Profile, text: str, cycle_number: int) -> tuple[str, str, str]:
    """(system_prompt, input_prompt, cot_trace): the model's own, or the rule engine's."""
    given = order.given or {}
    s = heuristic.signals(order.features)
    model = given.get("model")
    system = given.get("system_prompt") or (f"agent.market_context.v1+{model}" if model else RULE_ENGINE_PROMPT)
    prompt = given.get("input_prompt") or reasoning.heuristic_input_prompt(
        context, order.symbol, order.features, cycle_number
    )
    trace = given.get("cot_trace") or reasoning.heuristic_trace(order.action, text, s, p)
    return system, prompt, trace


def build(
    *,
    order: Order,
    book: Book,
    context: dict,
    trader: dict,
    profile: heuristic.Profile,
    text: str,
    cycle_number: int,
    now_iso: str,
    llm_info: dict,
) -> tuple[dict, dict, dict]:
    order_id = new_order_id()
    head = _head(order, text, order_id, now_iso)
    rows = positions(book.holdings)
    shares_after = book.shares(order.symbol)
    source = "llm.openai" if order.source == "llm.openai" else "rule.heuristic"
    system, prompt, trace = _prompts(order, context, profile, text, cycle_number)
    name = str(trader.get("agent_name") or trader.get("trader_name") or trader.get("agent_id") or "agent")
    cand = context.get("candidate_set") or {}
    record = {
        "timestamp": now_iso,
        "cycle_number": cycle_number,
        "system_prompt": system,
        "input_prompt": prompt,
        "cot_trace": trace,
        "decision_json": json.dumps({"action": order.action, "symbol": order.symbol}, separators=(",", ":")),
        "decision_source": source,
        "account_state": {
            "total_balance": book.equity(),
            "available_balance": _r2(book.cash),
            "total_unrealized_profit": _r2(sum(row["unrealized_pnl"] for row in rows)),
            "position_count": len(rows),
            "margin_used_pct": 0,
        },
        "positions": rows,
        "candidate_coins": list(cand.get("symbols") or [order.symbol]),
        "decisions": [head],
        "execution_log": [reasoning.execution_log(now_iso=now_iso, name=name, head=head, error=order.error)],
        "success": head["success"],
        "error_message": "" if head["success"] else (order.error or ""),
        "reasoning_steps_cn": reasoning.reasoning_steps_cn(
            trader=trader,
            context=context,
            head=head,
            features=order.features,
            shares_on_symbol=shares_after,
            forced_hold=order.source == "readiness_gate",
        ),
        "llm": llm_info,
    }
    fill = {
        "action": order.action,
        "symbol": order.symbol,
        "executed": order.executed,
        "requested_quantity": order.requested,
        "filled_quantity": order.filled,
        "price": order.price,
        "notional": order.notional,
        "commission": order.commission,
        "stamp_duty": order.stamp_duty,
        "fee": head["fee_paid"],
        "realized_pnl": order.realized,
        "order_id": order_id if order.action != "hold" else None,
        "ts": now_iso,
        "source": order.source,
        "error": order.error,
    }
    hold_semantics = None
    if order.action == "hold":
        hold_semantics = "keep_existing_position" if shares_after > 0 else "no_position_no_order"
    audit = {
        "schema_version": AUDIT_SCHEMA,
        "timestamp": now_iso,
        "cycle_number": cycle_number,
        "symbol": order.symbol,
        "action": order.action,
        "decision_source": source,
        "forced_hold": order.source == "readiness_gate",
        "order_executed": order.executed,
        "position_shares_on_symbol": shares_after,
        "hold_semantics": hold_semantics,
        "data_readiness": context.get("data_readiness"),
        "session_gate": context.get("session_gate"),
        "market_overview": context.get("market_overview"),
        "market_breadth": context.get("market_breadth"),
        "news_digest": context.get("news_digest"),
    }
    return record, fill, audit
