"""Pure portfolio accounting on `agent.memory.v2` snapshots: no I/O, inputs are never mutated.

`apply_decision` books one decision and its fill (cash, holdings, FIFO lots, closed positions, trade
events, equity curve, journal, counters); `remark` re-marks every holding from the latest prices;
`sellable_shares` applies T+1 for CN-A. Call `remark` before `apply_decision` so the equity point a
decision appends already reflects fresh marks for the holdings it did not trade.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from ..market.sanity import usable_price
from ..numbers import finite

SHANGHAI = timezone(timedelta(hours=8))  # no DST since 1991, so a fixed offset is exact
DEFAULT_BALANCE = 100000
JOURNAL_CAP = 30
CLOSED_CAP = 2000
EVENTS_CAP = 5000
CURVE_CAP = 5000
ACTIONS_CAP = 30


# ---- number and time helpers (also used by memory and portfolio_views) -----------------------


def num(value: Any, default: float = 0.0) -> float:
    """JS `Number(value)` with a fallback for anything non-finite or non-numeric."""
    parsed = finite(value)
    return default if parsed is None else parsed


def rnd(value: float, digits: int = 2) -> float | int:
    """Round for storage: no -0.0, and integral values stay integers as JSON.stringify prints them."""
    out = round(float(value), digits) + 0.0
    return int(out) if out.is_integer() and abs(out) < 2**53 else out


def parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def time_ms(value: Any) -> int:
    """Epoch ms of an ISO timestamp, 0 when unparseable (JS `new Date(v).getTime() || 0`)."""
    parsed = parse_iso(value)
    return int(parsed.timestamp() * 1000) if parsed else 0


def shanghai_day(value: Any) -> str | None:
    parsed = parse_iso(value)
    return parsed.astimezone(SHANGHAI).date().isoformat() if parsed else None


def exchange_id_of(snapshot: dict) -> str:
    return "sim-us" if (snapshot.get("config") or {}).get("market") == "US" else "sim-cn"


# ---- lots ------------------------------------------------------------------------------------


def normalize_lots(lots: Any, fallback_ts: str) -> list[dict]:
    """Fresh copies of the open lots with positive size; old lots get `entry_trading_day` derived."""
    out = []
    for lot in lots if isinstance(lots, list) else []:
        if not isinstance(lot, dict):
            continue
        remaining = max(0, int(num(lot.get("remaining_qty"))))
        symbol = str(lot.get("symbol") or "").strip()
        if not symbol or remaining <= 0:
            continue
        entry_time = str(lot.get("entry_time") or fallback_ts)
        out.append({
            "symbol": symbol,
            "side": "LONG",
            "remaining_qty": remaining,
            "entry_qty": max(remaining, int(num(lot.get("entry_qty"), remaining))),
            "entry_price": rnd(num(lot.get("entry_price")), 4),
            "entry_time": entry_time,
            "entry_order_id": str(lot.get("entry_order_id") or "seed"),
            "entry_fee_remaining": rnd(max(0.0, num(lot.get("entry_fee_remaining"))), 4),
            "entry_trading_day": lot.get("entry_trading_day") or shanghai_day(entry_time),
            **({"entry_session": lot["entry_session"]} if lot.get("entry_session") else {}),
        })
    return out


def open_lots(snapshot: dict, fallback_ts: str) -> list[dict]:
    """The snapshot's lots; an old snapshot with holdings but no lots gets lots seeded from holdings."""
    lots = normalize_lots(snapshot.get("open_lots"), fallback_ts)
    if lots or not isinstance(snapshot.get("holdings"), list):
        return lots
    seeded_at = str(snapshot.get("updated_at") or fallback_ts)
    seeds = [{"symbol": h.get("symbol"), "remaining_qty": h.get("shares"), "entry_price": h.get("avg_cost"),
              "entry_time": seeded_at, "entry_order_id": "seed"} for h in snapshot["holdings"] if isinstance(h, dict)]
    return normalize_lots(seeds, fallback_ts)


def sellable_shares(snapshot: dict, trading_day: str, *, t_plus_one: bool | None = None, session: str | None = None) -> dict[str, int]:
    """Shares sellable today per held symbol. CN-A is T+1 (lots not bought on `trading_day`); US is not.

    `session` tells apart two replays of the same day (a looping replay plays 2026-02-10 again): a lot
    bought in an earlier pass is a day old in show time, so only lots of this very session are locked."""
    if t_plus_one is None:
        t_plus_one = (snapshot.get("config") or {}).get("market") != "US"
    held = {h["symbol"]: h["shares"] for h in _holdings(snapshot)}
    if not t_plus_one:
        return held
    older: dict[str, int] = {}
    in_lots: dict[str, int] = {}
    for lot in open_lots(snapshot, str(snapshot.get("updated_at") or "")):
        symbol, qty = lot["symbol"], lot["remaining_qty"]
        in_lots[symbol] = in_lots.get(symbol, 0) + qty
        day = lot.get("entry_session") or lot.get("entry_trading_day")
        # Only lots bought on `trading_day` itself are locked; a replay that loops back in time frees the rest.
        if day != (session or trading_day):
            older[symbol] = older.get(symbol, 0) + qty
    # Shares not covered by any lot predate lot tracking, so they are old enough to sell.
    return {s: min(n, older.get(s, 0) + max(0, n - in_lots.get(s, 0))) for s, n in held.items()}


# ---- holdings and totals ---------------------------------------------------------------------


def _holdings(snapshot: dict) -> list[dict]:
    """Copies of the holdings with shares > 0: symbol, shares, avg_cost, mark_price."""
    out = []
    for h in snapshot.get("holdings") or []:
        if not isinstance(h, dict):
            continue
        symbol = str(h.get("symbol") or "").strip()
        shares = int(num(h.get("shares")))
        if symbol and shares > 0:
            avg = num(h.get("avg_cost"))
            out.append({"symbol": symbol, "shares": shares, "avg_cost": avg, "mark_price": num(h.get("mark_price"), avg) or avg})
    return out


def _valued(holdings: list[dict], cash: float) -> tuple[list[dict], float, float]:
    """(holding rows with value/unrealized/weight, total equity, total unrealized)."""
    equity = cash + sum(h["shares"] * h["mark_price"] for h in holdings)
    unrealized = sum((h["mark_price"] - h["avg_cost"]) * h["shares"] for h in holdings)
    safe_total = max(1.0, equity)
    rows = []
    for h in holdings:
        value = h["shares"] * h["mark_price"]
        rows.append({
            "symbol": h["symbol"],
            "shares": h["shares"],
            "avg_cost": rnd(h["avg_cost"], 4),
            "mark_price": rnd(h["mark_price"], 4),
            "unrealized_pnl": rnd((h["mark_price"] - h["avg_cost"]) * h["shares"], 2),
            "value": rnd(value, 2),
            "weight_pct": rnd(value / safe_total * 100, 2),
        })
    return rows, equity, unrealized


def _balance_stats(stats: dict, equity: float, cash: float, unrealized: float) -> dict:
    initial = max(1.0, num(stats.get("initial_balance"), DEFAULT_BALANCE))
    total = rnd(max(0.0, equity), 2)
    return {
        **stats,
        "initial_balance": rnd(initial, 2),
        "latest_total_balance": total,
        "latest_available_balance": rnd(max(0.0, cash), 2),
        "latest_unrealized_profit": rnd(unrealized, 2),
        "return_rate_pct": rnd((total - initial) / initial * 100, 4),
        "peak_balance": rnd(max(num(stats.get("peak_balance"), total), total), 2),
        "trough_balance": rnd(min(num(stats.get("trough_balance"), total), total), 2),
    }


def portfolio_input(snapshot: dict, trading_day: str, session: str | None = None) -> dict:
    """What the order simulation needs: cash, holdings, T+1-sellable shares and equity at current marks."""
    cash = num((snapshot.get("stats") or {}).get("latest_available_balance"), DEFAULT_BALANCE)
    holdings = _holdings(snapshot)
    return {
        "cash": cash,
        "holdings": holdings,
        "sellable": sellable_shares(snapshot, trading_day, session=session),
        "total_equity": rnd(cash + sum(h["shares"] * h["mark_price"] for h in holdings), 2),
    }


def remark(snapshot: dict, prices: dict[str, float], *, now_iso: str, trading_day: str | None = None) -> dict:
    """Re-mark every holding that has a latest price and recompute the totals (W7).

    The equity curve is left alone (a decision appends the next point); with `trading_day`, that
    day's journal row gets its end/peak/trough balance updated so `daily_pnl` stays current.
    """
    holdings = _holdings(snapshot)
    for h in holdings:
        price = prices.get(h["symbol"])
        if usable_price(price):  # a feed error (NaN, 1e300, <= 0) never becomes a mark
            h["mark_price"] = float(price)
    stats = dict(snapshot.get("stats") or {})
    cash = num(stats.get("latest_available_balance"), DEFAULT_BALANCE)
    rows, equity, unrealized = _valued(holdings, cash)
    stats = _balance_stats(stats, equity, cash, unrealized)
    out = {**snapshot, "meta": {**(snapshot.get("meta") or {}), "marked_at": now_iso}, "stats": stats, "holdings": rows}
    if trading_day:
        total = stats["latest_total_balance"]
        out["daily_journal"] = [
            {**row, **_day_balances(row, total)} if isinstance(row, dict) and row.get("trading_day") == trading_day else row
            for row in snapshot.get("daily_journal") or []
        ]
    return out


def _day_balances(row: dict, end: float) -> dict:
    return {
        "end_balance": end,
        "peak_balance": rnd(max(num(row.get("peak_balance"), end), end), 2),
        "trough_balance": rnd(min(num(row.get("trough_balance"), end), end), 2),
    }


# ---- booking a decision ----------------------------------------------------------------------


def fee_of(fill: dict, commission_rate: float) -> float:
    """The explicit fee; else filled notional x rate; else qty x price x rate (Node's order)."""
    explicit = num(fill.get("fee"), -1.0)
    if explicit >= 0:
        return rnd(explicit, 2)
    notional = num(fill.get("notional"))
    if notional > 0:
        return rnd(notional * commission_rate, 2)
    return rnd(max(0.0, num(fill.get("filled_quantity"))) * max(0.0, num(fill.get("price"))) * commission_rate, 2)


def _close_fifo(lots: list[dict], *, symbol: str, qty: int, price: float, fee: float, order_id: str,
                ts: str, trader_id: str, exchange_id: str, next_id: int) -> tuple[list[dict], int]:
    """Consume lots oldest first; one closed-position row per lot touched (newest first)."""
    rows: list[dict] = []
    remaining, fee_left = qty, rnd(fee, 4)
    for lot in lots:
        if not remaining:
            break
        if lot["symbol"] != symbol or lot["remaining_qty"] <= 0:
            continue
        close_qty = min(remaining, lot["remaining_qty"])
        entry_fee = rnd(lot["entry_fee_remaining"] * close_qty / lot["remaining_qty"], 4) if lot["entry_fee_remaining"] > 0 else 0
        exit_fee = rnd(min(fee_left, fee * close_qty / qty), 4)
        total_fee = rnd(entry_fee + exit_fee, 4)
        rows.insert(0, {
            "id": next_id, "trader_id": trader_id, "exchange_id": exchange_id, "exchange_type": "sim",
            "symbol": symbol, "side": "LONG", "quantity": close_qty, "entry_quantity": close_qty,
            "entry_price": lot["entry_price"], "entry_order_id": lot["entry_order_id"], "entry_time": lot["entry_time"],
            "exit_price": rnd(price, 4), "exit_order_id": order_id, "exit_time": ts,
            "realized_pnl": rnd((price - lot["entry_price"]) * close_qty - total_fee, 2), "fee": total_fee,
            "leverage": 1, "status": "closed", "close_reason": "signal_sell",
            "created_at": lot["entry_time"], "updated_at": ts,
        })
        next_id += 1
        lot["remaining_qty"] -= close_qty
        lot["entry_fee_remaining"] = rnd(max(0.0, lot["entry_fee_remaining"] - entry_fee), 4)
        fee_left = rnd(max(0.0, fee_left - exit_fee), 4)
        remaining -= close_qty
    return rows, next_id


def _journal(prev: list, *, day: str, replay: dict | None, start: float, end: float, fee: float,
             action: str, is_buy: bool, is_sell: bool, ts: str) -> list[dict]:
    rows = [r for r in prev if isinstance(r, dict)] if isinstance(prev, list) else []
    counts = {"decisions": 1, "buys": int(is_buy), "sells": int(is_sell), "holds": int(action == "hold")}
    for i, row in enumerate(rows):
        if row.get("trading_day") == day:
            rows[i] = {
                **row,
                "day_index": int(num((replay or {}).get("day_index"), num(row.get("day_index")))),
                **{k: int(num(row.get(k))) + v for k, v in counts.items()},
                **_day_balances(row, end),
                "fees_paid": rnd(num(row.get("fees_paid")) + fee, 2),
                "last_action": action,
                "updated_at": ts,
            }
            return rows[:JOURNAL_CAP]
    row = {
        "trading_day": day, "day_index": int(num((replay or {}).get("day_index"))), **counts,
        "start_balance": start, "end_balance": end, "peak_balance": rnd(max(start, end), 2),
        "trough_balance": rnd(min(start, end), 2), "fees_paid": fee, "last_action": action, "updated_at": ts,
    }
    return [row, *rows][:JOURNAL_CAP]


def apply_decision(snapshot: dict, *, record: dict, fill: dict, trading_day: str, replay: dict | None,
                   settings: Any, now_iso: str, session: str | None = None) -> dict:
    """Book one decision and its fill; returns the next snapshot (the input is left untouched)."""
    stats = dict(snapshot.get("stats") or {})
    meta = dict(snapshot.get("meta") or {})
    config = dict(snapshot.get("config") or {})
    trader_id = str(snapshot.get("trader_id") or "")
    ts = str(record.get("timestamp") or fill.get("ts") or now_iso)
    cycle = int(num(record.get("cycle_number")))
    source = str(record.get("decision_source") or fill.get("source") or "rule.heuristic")
    rate = max(0.0, num(getattr(settings, "agent_commission_rate", None), 0.0003))

    action = str(fill.get("action") or "hold").lower()
    executed = fill.get("executed") is True and action in ("buy", "sell")
    symbol = str(fill.get("symbol") or "").strip()
    price = max(0.0, num(fill.get("price")))
    qty = max(0, int(num(fill.get("filled_quantity"))))
    booked = executed and bool(symbol) and qty > 0 and price > 0
    is_buy, is_sell = booked and action == "buy", booked and action == "sell"
    fee = fee_of(fill, rate) if executed else 0
    notional = num(fill.get("notional")) or qty * price
    realized = num(fill.get("realized_pnl"), math.nan)
    order_id = str(fill["order_id"]) if fill.get("order_id") not in (None, "") else f"order-{cycle}-{ts}"
    initial = max(1.0, num(stats.get("initial_balance"), DEFAULT_BALANCE))
    start_equity = num(stats.get("latest_total_balance"), initial)

    cash = num(stats.get("latest_available_balance"), initial)
    holdings = _holdings(snapshot)
    held = next((h for h in holdings if h["symbol"] == symbol), None)
    if is_buy:
        cash -= notional + fee
        if held:
            shares = held["shares"] + qty
            held.update(avg_cost=(held["shares"] * held["avg_cost"] + qty * price) / shares, shares=shares, mark_price=price)
        else:
            holdings.append({"symbol": symbol, "shares": qty, "avg_cost": price, "mark_price": price})
    elif is_sell:
        cash += notional - fee
        if held:
            held.update(shares=held["shares"] - qty, mark_price=price)
            holdings = [h for h in holdings if h["shares"] > 0]
    rows, equity, unrealized = _valued(holdings, rnd(cash, 2))
    new_stats = _balance_stats(stats, equity, rnd(cash, 2), unrealized)
    total, cash_after = new_stats["latest_total_balance"], new_stats["latest_available_balance"]

    lots = open_lots(snapshot, ts)
    next_id = max(1, int(num(meta.get("next_position_id"), len(snapshot.get("closed_positions") or []) + 1)))
    closed_rows: list[dict] = []
    if is_buy:
        lots.append({
            "symbol": symbol, "side": "LONG", "remaining_qty": qty, "entry_qty": qty, "entry_price": rnd(price, 4),
            "entry_time": ts, "entry_order_id": order_id, "entry_fee_remaining": rnd(fee, 4),
            "entry_trading_day": trading_day,
            **({"entry_session": session} if session and session != trading_day else {}),
        })
    elif is_sell:
        closed_rows, next_id = _close_fifo(lots, symbol=symbol, qty=qty, price=price, fee=fee, order_id=order_id, ts=ts,
                                           trader_id=trader_id, exchange_id=exchange_id_of(snapshot), next_id=next_id)

    events = list(snapshot.get("trade_events") or [])
    if booked:
        after = next((h for h in rows if h["symbol"] == symbol), None)
        events.insert(0, {
            "id": order_id, "trader_id": trader_id, "cycle_number": cycle, "ts": ts, "symbol": symbol,
            "side": "BUY" if is_buy else "SELL", "quantity": qty, "price": rnd(price, 4), "notional": rnd(qty * price, 2),
            "fee": rnd(fee, 2), "realized_pnl": rnd(realized, 2) if is_sell and math.isfinite(realized) else 0,
            "cash_after": cash_after, "total_equity_after": total,
            "position_after_qty": after["shares"] if after else 0,
            "position_after_avg_cost": after["avg_cost"] if after else 0,
            "position_after_mark": after["mark_price"] if after else rnd(price, 4),
            "source": source,
        })

    pnl_pct = rnd((total - initial) / initial * 100, 4)
    point = {"timestamp": ts, "total_equity": total, "pnl": rnd(total - initial, 2), "pnl_pct": pnl_pct,
             "total_pnl_pct": pnl_pct, "cycle_number": max(0, int(num(record.get("cycle_number"), num(stats.get("decisions")) + 1)))}
    curve = [p for p in snapshot.get("equity_curve") or [] if isinstance(p, dict)]
    if curve and curve[-1].get("timestamp") == ts:
        curve[-1] = point
    else:
        curve.append(point)

    sold_with = is_sell and math.isfinite(realized)
    new_stats.update(
        decisions=int(num(stats.get("decisions"))) + 1,
        wins=int(num(stats.get("wins"))) + int(sold_with and realized > 0),
        losses=int(num(stats.get("losses"))) + int(sold_with and realized < 0),
        holds=int(num(stats.get("holds"))) + int(action == "hold"),
        buy_trades=int(num(stats.get("buy_trades"))) + int(executed and action == "buy"),
        sell_trades=int(num(stats.get("sell_trades"))) + int(executed and action == "sell"),
        total_fees_paid=rnd(num(stats.get("total_fees_paid")) + fee, 2),
    )
    prev_replay = snapshot.get("replay") or {}
    runtime_meta = record.get("runtime_meta") or {}
    every_bars = num(runtime_meta.get("decision_every_bars"), num(config.get("decision_every_bars"), 10))
    return {
        **snapshot,
        "schema_version": "agent.memory.v2",
        "meta": {**meta, "updated_at": ts, "next_position_id": next_id},
        "config": {**config, "initial_balance": rnd(initial, 2), "decision_every_bars": max(1, int(every_bars)),
                   "llm_model": runtime_meta.get("llm_model") or config.get("llm_model"), "commission_rate": rate},
        "updated_at": ts,
        "replay": {
            "trading_day": (replay or {}).get("trading_day") or trading_day,
            "day_index": int(num((replay or {}).get("day_index"), num(prev_replay.get("day_index")))),
            "day_count": int(num((replay or {}).get("day_count"), num(prev_replay.get("day_count")))),
            "bar_cursor": int(num((replay or {}).get("cursor_index", (replay or {}).get("bar_cursor")),
                                  num(prev_replay.get("bar_cursor"), -1))),
            "is_day_start": bool((replay or {}).get("is_day_start")),
            "is_day_end": bool((replay or {}).get("is_day_end")),
        },
        "stats": new_stats,
        "daily_journal": _journal(snapshot.get("daily_journal"), day=trading_day, replay=replay,
                                  start=rnd(start_equity, 2), end=total, fee=fee, action=action,
                                  is_buy=executed and action == "buy", is_sell=executed and action == "sell", ts=ts),
        "holdings": rows,
        "open_lots": [lot for lot in lots if lot["remaining_qty"] > 0],
        "closed_positions": (closed_rows + list(snapshot.get("closed_positions") or []))[:CLOSED_CAP],
        "trade_events": events[:EVENTS_CAP],
        "equity_curve": curve[-CURVE_CAP:],
        "recent_actions": [
            {"cycle_number": cycle, "action": action, "symbol": symbol or None, "price": num(fill.get("price")),
             "ts": ts, "source": source, "fee_paid": fee},
            *(snapshot.get("recent_actions") or []),
        ][:ACTIONS_CAP],
    }
