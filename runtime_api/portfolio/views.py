"""Pure read views over memory snapshots, in the exact shapes of the Node runtime's trader endpoints.

Every builder accepts `None` for an agent without a snapshot and answers with the Node defaults
(100000 balance, no positions). Nothing here mutates the snapshot it is given.
"""

from __future__ import annotations

import math
import time
from typing import Any

from runtime_api.state.memory import utc_iso
from runtime_api.portfolio.accounting import DEFAULT_BALANCE, num, rnd, time_ms


def _holdings(snapshot: dict | None) -> list[dict]:
    return [h for h in (snapshot or {}).get("holdings") or [] if isinstance(h, dict)]


def _position_count(snapshot: dict | None) -> int:
    return sum(1 for h in _holdings(snapshot) if num(h.get("shares")) > 0)


def account_view(snapshot: dict | None) -> dict:
    """/api/account: equity, cash, P&L and today's P&L from the latest journal row."""
    stats = (snapshot or {}).get("stats") or {}
    initial = num(stats.get("initial_balance")) or DEFAULT_BALANCE
    total = num(stats.get("latest_total_balance"), math.nan)
    if not (math.isfinite(total) and total > 0):
        return {
            "total_equity": initial, "wallet_balance": initial, "unrealized_profit": 0, "available_balance": initial,
            "total_pnl": 0, "total_pnl_pct": 0, "initial_balance": initial, "daily_pnl": 0, "position_count": 0,
            "margin_used": 0, "margin_used_pct": 0,
        }
    equity = rnd(total, 2)
    cash = rnd(num(stats.get("latest_available_balance"), equity), 2)
    journal = (snapshot or {}).get("daily_journal") or []
    latest = journal[0] if journal and isinstance(journal[0], dict) else None
    daily = rnd((num(latest.get("end_balance")) or equity) - (num(latest.get("start_balance")) or equity), 2) if latest else 0
    return {
        "total_equity": equity,
        "wallet_balance": cash,
        "unrealized_profit": rnd(num(stats.get("latest_unrealized_profit")), 2),
        "available_balance": cash,
        "total_pnl": rnd(equity - initial, 2),
        "total_pnl_pct": rnd((equity - initial) / max(1.0, initial) * 100, 2),
        "initial_balance": initial,
        "daily_pnl": daily,
        "position_count": _position_count(snapshot),
        "margin_used": 0,
        "margin_used_pct": 0,
    }


def positions_view(snapshot: dict | None) -> list[dict]:
    """/api/positions: one LONG row per holding with shares > 0."""
    out = []
    for h in _holdings(snapshot):
        symbol = str(h.get("symbol") or "")
        if num(h.get("shares")) <= 0 or not symbol:
            continue
        qty = max(0, int(num(h.get("shares"))))
        entry = num(h.get("avg_cost"))
        mark = num(h.get("mark_price")) or entry
        out.append({
            "symbol": symbol, "side": "LONG", "entry_price": rnd(entry, 4), "mark_price": rnd(mark, 4), "quantity": qty,
            "leverage": 1, "unrealized_pnl": rnd((mark - entry) * qty, 2),
            "unrealized_pnl_pct": rnd((mark - entry) / entry * 100, 4) if entry > 0 else 0,
            "liquidation_price": 0, "margin_used": 0,
        })
    return out


def equity_history_view(snapshot: dict | None, *, hours: float = 0, now_ms: int | None = None) -> list[dict]:
    """/api/equity-history: the curve oldest first; `hours` > 0 filters, falling back to all points."""
    snapshot = snapshot or {}
    stats = snapshot.get("stats") or {}
    initial = max(1.0, num(stats.get("initial_balance")) or DEFAULT_BALANCE)
    points = [
        {
            "timestamp": str(p.get("timestamp") or utc_iso()),
            "total_equity": rnd(num(p.get("total_equity")), 2),
            "pnl": rnd(num(p.get("pnl")), 2),
            "pnl_pct": rnd(num(p.get("pnl_pct")), 4),
            "total_pnl_pct": rnd(num(p.get("total_pnl_pct")), 4),
            "cycle_number": max(0, int(num(p.get("cycle_number")) or i + 1)),
        }
        for i, p in enumerate(snapshot.get("equity_curve") or [])
        if isinstance(p, dict)
    ]
    points.sort(key=lambda p: time_ms(p["timestamp"]))
    if num(hours) > 0:
        cutoff = (now_ms if now_ms is not None else int(time.time() * 1000)) - num(hours) * 3_600_000
        recent = [p for p in points if time_ms(p["timestamp"]) >= cutoff]
        points = recent or points
    if points:
        return points
    latest = rnd(num(stats.get("latest_total_balance")) or initial, 2)
    pct = rnd((latest - initial) / initial * 100, 4)
    return [{"timestamp": utc_iso(), "total_equity": latest, "pnl": rnd(latest - initial, 2), "pnl_pct": pct,
             "total_pnl_pct": pct, "cycle_number": max(0, int(num(stats.get("decisions"))))}]


def history_stats(closed: list[dict], initial: float = DEFAULT_BALANCE) -> dict:
    """Trade statistics over closed positions (profit factor 999 with wins and no losses)."""
    pnls = [num(t.get("realized_pnl")) for t in closed]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_profit, gross_loss = sum(wins), abs(sum(losses))
    returns = [p / max(1.0, initial) for p in pnls]
    mean = sum(returns) / len(returns) if returns else 0.0
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1) if len(returns) > 1 else 0.0
    std = math.sqrt(max(0.0, variance))
    equity = peak = num(initial) or DEFAULT_BALANCE
    max_dd = 0.0
    for trade in sorted(closed, key=lambda t: time_ms(t.get("exit_time"))):
        equity += num(trade.get("realized_pnl"))
        peak = max(peak, equity)
        max_dd = max(max_dd, (peak - equity) / peak * 100 if peak > 0 else 0.0)
    total = len(pnls)
    return {
        "total_trades": total,
        "win_trades": len(wins),
        "loss_trades": len(losses),
        "win_rate": rnd(len(wins) / total * 100, 2) if total else 0,
        "profit_factor": rnd(gross_profit / gross_loss, 2) if gross_loss > 0 else (999 if gross_profit > 0 else 0),
        "sharpe_ratio": rnd(mean / std * math.sqrt(len(returns)), 2) if std > 0 else 0,
        "total_pnl": rnd(sum(pnls), 2),
        "total_fee": rnd(sum(num(t.get("fee")) for t in closed), 2),
        "avg_win": rnd(gross_profit / len(wins), 2) if wins else 0,
        "avg_loss": rnd(sum(losses) / len(losses), 2) if losses else 0,
        "max_drawdown_pct": rnd(max_dd, 2),
    }


def symbol_stats(closed: list[dict]) -> list[dict]:
    buckets: dict[str, dict] = {}
    for t in closed:
        symbol = str(t.get("symbol") or "").strip()
        if not symbol:
            continue
        b = buckets.setdefault(symbol, {"n": 0, "wins": 0, "pnl": 0.0, "mins": 0.0})
        pnl = num(t.get("realized_pnl"))
        b["n"] += 1
        b["wins"] += pnl > 0
        b["pnl"] += pnl
        b["mins"] += max(0.0, (time_ms(t.get("exit_time")) - time_ms(t.get("entry_time"))) / 60000)
    rows = [
        {"symbol": s, "total_trades": b["n"], "win_trades": b["wins"], "win_rate": rnd(b["wins"] / b["n"] * 100, 2),
         "total_pnl": rnd(b["pnl"], 2), "avg_pnl": rnd(b["pnl"] / b["n"], 2), "avg_hold_mins": rnd(b["mins"] / b["n"], 2)}
        for s, b in buckets.items()
    ]
    return sorted(rows, key=lambda r: r["total_pnl"], reverse=True)


def direction_stats(closed: list[dict]) -> list[dict]:
    buckets: dict[str, dict] = {}
    for t in closed:
        b = buckets.setdefault(str(t.get("side") or "LONG").upper(), {"n": 0, "wins": 0, "pnl": 0.0})
        pnl = num(t.get("realized_pnl"))
        b["n"] += 1
        b["wins"] += pnl > 0
        b["pnl"] += pnl
    return [
        {"side": side, "trade_count": b["n"], "win_rate": rnd(b["wins"] / b["n"] * 100, 2),
         "total_pnl": rnd(b["pnl"], 2), "avg_pnl": rnd(b["pnl"] / b["n"], 2)}
        for side, b in buckets.items()
    ]


def _seed_events(snapshot: dict, trader_id: str, closed: list[dict], held: dict[str, dict], rate: float) -> list[dict]:
    """Trade events back-filled from open lots (BUY) and closed positions (SELL) for old snapshots
    (cash and equity after each come from _complete_event, as for stored events)."""
    base = {"trader_id": trader_id, "cycle_number": 0, "source": "seed"}
    events = []
    for lot in snapshot.get("open_lots") or []:
        event = _seed_event(base, "BUY", lot.get("entry_order_id"), lot.get("symbol"), lot.get("entry_qty"),
                            lot.get("entry_price"), lot.get("entry_time") or snapshot.get("updated_at"),
                            num(lot.get("entry_fee_remaining")), rate)
        if event:
            h = held.get(event["symbol"]) or {}
            shares, cost = num(h.get("shares")), num(h.get("avg_cost"))
            event.update(realized_pnl=0, position_after_qty=int(shares) if shares > 0 else event["quantity"],
                         position_after_avg_cost=rnd(cost if cost > 0 else event["price"], 4),
                         position_after_mark=_seed_mark(h, event["price"]))
            events.append(event)
    for pos in closed:
        event = _seed_event(base, "SELL", pos.get("exit_order_id"), pos.get("symbol"), pos.get("quantity"),
                            pos.get("exit_price"), pos.get("exit_time"), num(pos.get("fee")), rate)
        if event:
            h = held.get(event["symbol"]) or {}
            cost = num(h.get("avg_cost"))
            event.update(realized_pnl=rnd(num(pos.get("realized_pnl")), 2),
                         position_after_qty=max(0, int(num(h.get("shares")))),
                         position_after_avg_cost=rnd(cost, 4) if cost > 0 else 0,
                         position_after_mark=_seed_mark(h, event["price"]))
            events.append(event)
    return events


def _seed_event(base: dict, side: str, order_id, symbol, qty, price, ts, fee: float, rate: float) -> dict | None:
    """The fields a BUY and a SELL seed share; None when the record lacks a symbol, quantity, price or time."""
    symbol, qty, price, ts = str(symbol or "").strip(), max(0, int(num(qty))), num(price, math.nan), str(ts or "")
    if not symbol or not qty or not math.isfinite(price) or not ts:
        return None
    notional = rnd(qty * price, 2)
    return {"id": str(order_id or f"seed-{side.lower()}-{symbol}-{ts}"), **base, "ts": ts, "symbol": symbol,
            "side": side, "quantity": qty, "price": price, "notional": notional,
            "fee": rnd(fee, 2) if fee > 0 else (rnd(notional * rate, 2) if rate > 0 else 0)}


def _seed_mark(held: dict, price: float) -> float:
    mark = num(held.get("mark_price"))
    return rnd(mark if mark > 0 else price, 4)


def _complete_event(event: dict, held: dict[str, dict], cash_after: float, equity_after: float) -> dict:
    """Fill post-trade columns missing from older events, and show fees without a sign."""
    out = dict(event)
    h = held.get(str(out.get("symbol") or "").strip()) or {}
    if out.get("cash_after") is None:
        out["cash_after"] = cash_after
    if out.get("total_equity_after") is None:
        out["total_equity_after"] = equity_after
    if out.get("position_after_qty") is None and "shares" in h:
        out["position_after_qty"] = max(0, int(num(h.get("shares"))))
    if out.get("position_after_avg_cost") is None and num(h.get("avg_cost")) > 0:
        out["position_after_avg_cost"] = rnd(num(h.get("avg_cost")), 4)
    if out.get("position_after_mark") is None and num(h.get("mark_price")) > 0:
        out["position_after_mark"] = rnd(num(h.get("mark_price")), 4)
    fee = num(out.get("fee"), math.nan)
    if math.isfinite(fee):
        out["fee"] = rnd(abs(fee), 2)
    return out


def positions_history_view(snapshot: dict | None, *, limit: Any = 100, trader_id: str | None = None,
                           commission_rate: float = 0.0003) -> dict:
    """/api/positions/history: closed positions and trade events newest first, plus statistics."""
    snapshot = snapshot or {}
    trader_id = trader_id or str(snapshot.get("trader_id") or "")
    stats = snapshot.get("stats") or {}
    initial = num(stats.get("initial_balance")) or DEFAULT_BALANCE
    closed = [c for c in snapshot.get("closed_positions") or [] if isinstance(c, dict)]
    rate = max(0.0, num((snapshot.get("config") or {}).get("commission_rate"), commission_rate))
    cash_after = rnd(num(stats.get("latest_available_balance"), initial), 2)
    equity_after = rnd(num(stats.get("latest_total_balance"), initial), 2)
    held = {str(h.get("symbol") or "").strip(): h for h in _holdings(snapshot) if str(h.get("symbol") or "").strip()}

    events = [e for e in snapshot.get("trade_events") or [] if isinstance(e, dict)]
    if not events and snapshot:
        events = _seed_events(snapshot, trader_id, closed, held, rate)
    events = [_complete_event(e, held, cash_after, equity_after) for e in events]

    safe_limit = max(1, min(int(num(limit, 100)), 1000))
    by_exit = sorted(closed, key=lambda c: time_ms(c.get("exit_time")), reverse=True)
    return {
        "positions": by_exit[:safe_limit],
        "trade_events": sorted(events, key=lambda e: time_ms(e.get("ts")), reverse=True)[:safe_limit],
        "stats": history_stats(by_exit, initial),
        "symbol_stats": symbol_stats(by_exit),
        "direction_stats": direction_stats(by_exit),
    }


def competition_row(trader: dict, snapshot: dict | None) -> dict:
    """One /api/competition row; `trader` is a registry view (agent_*) or a trader row (trader_*)."""
    row = {
        "trader_id": trader.get("trader_id") or trader.get("agent_id"),
        "trader_name": trader.get("trader_name") or trader.get("agent_name"),
        "ai_model": trader.get("ai_model"),
        "exchange": "sim",
        "total_equity": DEFAULT_BALANCE,
        "total_pnl": 0,
        "total_pnl_pct": 0,
        "position_count": 0,
        "margin_used_pct": 0,
        "is_running": trader["is_running"] if "is_running" in trader else trader.get("status") == "running",
    }
    for key in ("avatar_url", "avatar_hd_url"):
        if trader.get(key):
            row[key] = trader[key]
    total = num(((snapshot or {}).get("stats") or {}).get("latest_total_balance"), math.nan)
    if math.isfinite(total) and total > 0:
        equity = rnd(total, 2)
        row.update(total_equity=equity, total_pnl=rnd(equity - DEFAULT_BALANCE, 2),
                   total_pnl_pct=rnd((equity - DEFAULT_BALANCE) / DEFAULT_BALANCE * 100, 2),
                   position_count=_position_count(snapshot))
    return row


def competition_view(rows: list[dict], replay: dict | None) -> dict:
    replay = replay or {}
    keys = ("trading_day", "day_index", "day_count", "day_bar_index", "day_bar_count")
    return {"count": len(rows), "traders": rows, "replay": {k: replay.get(k, None if k == "trading_day" else 0) for k in keys}}


def top_traders(rows: list[dict], n: int = 3) -> list[dict]:
    return sorted(rows, key=lambda r: num(r.get("total_pnl_pct")), reverse=True)[:n]
