"""An operator closes a trader's whole position in one symbol: a real sell through the fill path.

The Node runtime answered "queued" and did nothing. Here the sell is priced at the latest bar the
runtime itself would trade on (the replay clock in replay mode, the live file in live mode), filled
like an agent's sell (commission minimum, stamp duty, T+1: shares bought today stay), booked into
the snapshot (trade event, closed positions, journal, equity) under the agent's lock with its
generation bumped, so a cycle in flight discards its stale result instead of undoing the close.
Refused while the kill switch is on (no order while it is), outside the session in live mode,
without a price, or with nothing sellable. The control audit line carries the fill.
"""

from __future__ import annotations

from datetime import datetime, timezone

import anyio

from . import accounting as portfolio
from ..decision.simulator import close_position_fill
from ..errors import ApiError, bad_request, conflict
from ..ids import new_order_id
from ..manifests import AGENT_ID_RE
from ..market.calendar import market_of_exchange, session_state, trading_day_of


def _now_iso() -> str:
    """Wall-clock time, as the runtime stamps a decision's trade event."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _latest_price(ctx, symbol: str) -> float:
    try:
        frames = ctx.svc.market.get_frames(symbol, "1m", 1)["frames"]
    except ApiError as exc:
        raise conflict("no_price", f"no price for {symbol}: {exc.code}") from None
    close = ((frames[-1] if frames else {}).get("bar") or {}).get("close")
    if not isinstance(close, (int, float)) or not close > 0:
        raise conflict("no_price", f"no current price for {symbol}")
    return float(close)


def validate(ctx, agent_id: str, body: dict) -> tuple[dict, str]:
    """The trader and the symbol, or a 4xx; checked before anything is read or written."""
    if not AGENT_ID_RE.match(agent_id):
        raise bad_request("invalid_agent_id", "agent id must match ^[a-z][a-z0-9_]{1,63}$")
    rec = ctx.trader(agent_id)
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip() or len(symbol) > 32:
        raise bad_request("invalid_symbol", "send the held symbol to close, e.g. {\"symbol\": \"600519.SH\"}")
    side = str(body.get("side") or "LONG").strip().upper()
    if side != "LONG":
        raise bad_request("invalid_side", "positions are long only: side must be LONG")
    return rec, symbol.strip().upper()


async def close_position(ctx, agent_id: str, body: dict, *, dry_run: bool) -> dict:
    rec, symbol = validate(ctx, agent_id, body)
    if ctx.svc.kill_switch.active:
        raise ApiError(423, "kill_switch_active", "no order while the kill switch is on")
    market = market_of_exchange(str(rec.get("exchange_id") or ""))
    clock = ctx.runtime.clock_ms()
    if ctx.settings.live_mode:
        session = session_state(market, clock)
        if not session["is_open"]:
            raise conflict("market_closed", f"the {market} market is closed ({session['reason']}): no order now")
    replay = ctx.svc.replay.status() if ctx.svc.replay else None
    trading_day = (replay or {}).get("trading_day") or trading_day_of(clock, market)
    runtime = ctx.runtime
    memory = ctx.svc.memory

    async with runtime.lock_for(agent_id):
        snapshot = await anyio.to_thread.run_sync(memory.get, agent_id)
        held = {h["symbol"]: h for h in (snapshot or {}).get("holdings") or []}
        if symbol not in held or not held[symbol].get("shares"):
            raise conflict("no_position", f"{agent_id} holds no {symbol}")
        price = await anyio.to_thread.run_sync(_latest_price, ctx, symbol)
        now_iso = _now_iso()
        fill = close_position_fill(portfolio=portfolio.portfolio_input(snapshot, trading_day), symbol=symbol,
                                   price=price, settings=ctx.settings, market=market, now_iso=now_iso,
                                   order_id=new_order_id())
        if not fill["executed"]:
            code = fill["error"] or "nothing_sellable"
            raise conflict(code, f"{symbol}: {fill['held_shares']} shares held, none sellable today (T+1)"
                           if code == "t_plus_one_locked" else f"{symbol}: nothing could be sold ({code})")
        result = {k: fill[k] for k in ("symbol", "held_shares", "filled_quantity", "locked_shares", "price",
                                       "notional", "commission", "stamp_duty", "fee", "realized_pnl", "order_id")}
        if dry_run:
            return {**result, "trader_id": agent_id, "dry_run": True, "executed": False,
                    "message": f"would sell {fill['filled_quantity']} {symbol} at {price}"}
        decisions = int(((snapshot.get("stats") or {}).get("decisions")) or 0)
        record = {"timestamp": now_iso, "cycle_number": decisions, "decision_source": "operator.close_position"}
        new = portfolio.apply_decision(snapshot, record=record, fill=fill, trading_day=trading_day,
                                       replay=None, settings=ctx.settings, now_iso=now_iso)
        # An operator's close is not an agent decision: the decision and hold counts stay as they were.
        new["stats"] = {**new["stats"], "decisions": decisions, "holds": (snapshot.get("stats") or {}).get("holds", 0)}
        new["replay"] = snapshot.get("replay", new["replay"])
        runtime.generation[agent_id] += 1  # a cycle in flight computed from the old snapshot: discard it
        await anyio.to_thread.run_sync(memory.save, agent_id, new)
    runtime.bump()
    message = f"sold {fill['filled_quantity']} {symbol} at {price}"
    if fill["locked_shares"]:
        message += f"; {fill['locked_shares']} bought today stay (T+1)"
    return {**result, "trader_id": agent_id, "dry_run": False, "executed": True, "message": message}
