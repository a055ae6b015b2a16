"""Trader views for the lobby, rooms and dashboards: public reads served from memory."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from .. import clock
from ..portfolio import views as pv
from ..portfolio import close_position as position_close
from ..access.control_route import ControlCall, control_route, read_route
from .agents import ASSET_RE
from ..errors import bad_request
from ..web.http import json_body, query_int, query_str
from ..web.responses import JSONResponse, ok
from ..market.calendar import market_of_exchange, session_state
from ..state.write_health import state_write_failed

MAX_BATCH_IDS = 50
INITIAL_BALANCE = 100000


def avatar_urls(ctx, rec: dict) -> dict:
    """Avatar URLs of files that exist (a missing one is left out: the client then draws its own)."""
    out = {}
    folder = ctx.settings.resolve(ctx.settings.agents_dir) / rec["agent_id"]
    for key, file_key in (("avatar_url", "avatar_file"), ("avatar_hd_url", "avatar_hd_file")):
        name = rec.get(file_key)
        if rec.get(key):
            out[key] = rec[key]
        elif isinstance(name, str) and ASSET_RE.match(name) and (folder / name).is_file():
            out[key] = f"/api/agents/{rec['agent_id']}/assets/{name}?v={ctx.svc.boot_ms}"
    return out


def trader_row(ctx, rec: dict) -> dict:
    row = {
        "trader_id": rec["agent_id"],
        "trader_name": rec.get("agent_name"),
        "ai_model": rec.get("ai_model"),
        "exchange_id": rec.get("exchange_id"),
        "is_running": rec.get("status") == "running",
        "show_in_competition": bool(rec.get("show_in_lobby", True)),
        "strategy_name": rec.get("strategy_name") or "",
    }
    for key in ("trading_style", "risk_profile", "personality", "style_prompt_cn", "stock_pool"):
        if rec.get(key):
            row[key] = rec[key]
    row.update(avatar_urls(ctx, rec))
    return row


def lobby(ctx) -> list[dict]:
    return [ctx.svc.registry.get(a) for a in ctx.svc.registry.lobby_ids() if ctx.svc.registry.get(a)]


def snapshot_of(ctx, agent_id: str) -> dict | None:
    return ctx.svc.memory.get(agent_id)


def snapshot_version(ctx, agent_id: str) -> tuple:
    """What one trader's views depend on: that trader's snapshot only, so other agents'
    decisions do not invalidate them (an equity curve of 5,000 points takes ~25 ms to encode)."""
    snap = snapshot_of(ctx, agent_id)
    if snap is None:
        return (None, ctx.svc.kill_switch.active)
    return (id(snap), snap.get("updated_at"), len(snap.get("equity_curve") or ()), ctx.svc.kill_switch.active)


def competition(ctx) -> dict:
    rows = []
    for rec in lobby(ctx):
        row = pv.competition_row(rec, snapshot_of(ctx, rec["agent_id"]))
        row["is_running"] = rec.get("status") == "running"
        row.update(avatar_urls(ctx, rec))
        rows.append(row)
    replay = ctx.svc.replay.status() if ctx.svc.replay else {}
    return {
        "count": len(rows),
        "traders": rows,
        "replay": {k: replay.get(k) for k in ("trading_day", "day_index", "day_count", "day_bar_index", "day_bar_count")},
    }


def status_view(ctx, rec: dict) -> dict:
    s = ctx.settings
    runtime = ctx.runtime
    market = market_of_exchange(str(rec.get("exchange_id") or ""))
    gate = runtime.gate
    live = ctx.svc.live.frames.get(market)
    live_status = live.status() if live else None
    return {
        "trader_id": rec["agent_id"],
        "trader_name": rec.get("agent_name"),
        "ai_model": rec.get("ai_model"),
        "is_running": rec.get("status") == "running" and runtime.running and rec["agent_id"] in gate.get("active_trader_ids", []),
        "start_time": ctx.boot_iso,
        "runtime_minutes": int((time.monotonic() - ctx.boot_monotonic) // 60),
        "call_count": runtime.call_count(rec["agent_id"]),
        "initial_balance": INITIAL_BALANCE,
        "scan_interval": f"{runtime.cycle_ms // 1000}s" if s.live_mode else f"{runtime.effective_cycle_ms() // 1000}s (~{runtime.decision_every_bars} bars)",
        "stop_until": "",
        "last_reset_time": ctx.extra.get("last_reset_time", {}).get(rec["agent_id"], ""),
        "ai_provider": "openai-runtime" if runtime.llm else "rule-runtime",
        "strategy_type": "ai_trading",
        "paused_reason": runtime.state_reason(),
        "memory_error": ctx.svc.memory.errored().get(rec["agent_id"]),
        "market_gate": {
            "enabled": bool(gate.get("enabled")),
            "market": market,
            "timezone": "America/New_York" if market == "US" else "Asia/Shanghai",
            "allow_run": rec["agent_id"] in gate.get("active_trader_ids", []),
            "manual_paused": runtime.paused_reason == "manual",
            "kill_switch_active": ctx.svc.kill_switch.active,
            "session": session_state(market, clock.now_ms()) if s.live_mode else None,
            "live_fresh_ok": bool(live_status) and not live_status.get("stale") and not live_status.get("last_error"),
            "live_file": live_status,
        },
    }


def config_view(ctx, rec: dict) -> dict:
    row = trader_row(ctx, rec)
    return {
        "trader_id": rec["agent_id"],
        "trader_name": rec.get("agent_name"),
        "ai_model": rec.get("ai_model"),
        "exchange_id": rec.get("exchange_id"),
        "strategy_name": rec.get("strategy_name") or "",
        "trading_style": rec.get("trading_style"),
        "risk_profile": rec.get("risk_profile"),
        "personality": rec.get("personality"),
        "style_prompt_cn": rec.get("style_prompt_cn"),
        "is_running": rec.get("status") == "running",
        "avatar_url": row.get("avatar_url"),
        "avatar_hd_url": row.get("avatar_hd_url"),
        "initial_balance": INITIAL_BALANCE,
        "scan_interval_minutes": 1,
        "show_in_competition": bool(rec.get("show_in_lobby", True)),
        "is_cross_margin": False,
    }


# ---- handlers ------------------------------------------------------------------------------


async def get_traders(request: Request) -> Response:
    """Lobby traders (registered and shown in the lobby)."""
    ctx = request.app.state.ctx
    return ctx.cache.get("traders", ctx.svc.registry.version, lambda: [trader_row(ctx, r) for r in lobby(ctx)])


async def get_competition(request: Request) -> Response:
    """Leaderboard rows with equity and P&L."""
    ctx = request.app.state.ctx
    return ctx.cache.get("competition", ctx.replay_version(), lambda: competition(ctx))


async def get_top_traders(request: Request) -> Response:
    """The top three competition rows by total P&L %."""
    ctx = request.app.state.ctx

    def build():
        rows = competition(ctx)["traders"]
        return sorted(rows, key=lambda r: r.get("total_pnl_pct") or 0, reverse=True)[:3]

    return ctx.cache.get("top-traders", ctx.replay_version(), build)


async def get_status(request: Request) -> Response:
    """Runtime status of one trader."""
    ctx = request.app.state.ctx
    rec = ctx.trader_or_default(query_str(request, "trader_id"))
    return ok(status_view(ctx, rec))


async def get_account(request: Request) -> Response:
    """Account summary of one trader."""
    ctx = request.app.state.ctx
    rec = ctx.trader_or_default(query_str(request, "trader_id"))
    return ctx.cache.get(("account", rec["agent_id"]), snapshot_version(ctx, rec["agent_id"]), lambda: pv.account_view(snapshot_of(ctx, rec["agent_id"])))


async def get_positions(request: Request) -> Response:
    """Open positions of one trader."""
    ctx = request.app.state.ctx
    rec = ctx.trader_or_default(query_str(request, "trader_id"))
    return ctx.cache.get(("positions", rec["agent_id"]), snapshot_version(ctx, rec["agent_id"]), lambda: pv.positions_view(snapshot_of(ctx, rec["agent_id"])))


async def get_statistics(request: Request) -> Response:
    """Global cycle and trade counters."""
    ctx = request.app.state.ctx

    def build():
        m = ctx.runtime.metrics
        opens = closes = 0
        for agent_id in ctx.svc.registry.lobby_ids():
            stats = (snapshot_of(ctx, agent_id) or {}).get("stats") or {}
            opens += int(stats.get("buy_trades") or 0)
            closes += int(stats.get("sell_trades") or 0)
        return {
            "total_cycles": m["totalCycles"],
            "successful_cycles": m["successfulCycles"],
            "failed_cycles": m["failedCycles"],
            "total_open_positions": opens,
            "total_close_positions": closes,
        }

    return ctx.cache.get("statistics", ctx.state_version(), build)


async def get_equity_history(request: Request) -> Response:
    """Equity curve of one trader, optionally the last `hours`."""
    ctx = request.app.state.ctx
    rec = ctx.trader_or_default(query_str(request, "trader_id"))
    hours = _hours(request.query_params.get("hours"))
    return ctx.cache.get(
        ("equity", rec["agent_id"], hours), snapshot_version(ctx, rec["agent_id"]),
        lambda: pv.equity_history_view(snapshot_of(ctx, rec["agent_id"]), hours=hours),
    )


async def post_equity_history_batch(request: Request) -> Response:
    """Equity curves of several traders (read-only POST; at most 50 ids)."""
    ctx = request.app.state.ctx
    body = await json_body(request)
    ids = body.get("trader_ids")
    if ids is None:
        ids = ctx.svc.registry.lobby_ids()
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_request("invalid_trader_ids", "trader_ids must be a list of strings")
    if len(ids) > MAX_BATCH_IDS:
        raise bad_request("too_many_trader_ids", f"at most {MAX_BATCH_IDS} trader ids")
    hours = _hours(body.get("hours"))
    histories = {}
    for agent_id in dict.fromkeys(i.strip() for i in ids):
        rec = ctx.svc.registry.get(agent_id)
        if rec:
            histories[agent_id] = pv.equity_history_view(snapshot_of(ctx, agent_id), hours=hours)
    return ok({"histories": histories})


async def get_positions_history(request: Request) -> Response:
    """Closed positions, trade events and trade statistics of one trader."""
    ctx = request.app.state.ctx
    rec = ctx.trader_or_default(query_str(request, "trader_id"))
    limit = query_int(request, "limit", 100, 1, 1000)
    return ctx.cache.get(
        ("positions-history", rec["agent_id"], limit), snapshot_version(ctx, rec["agent_id"]),
        lambda: pv.positions_history_view(snapshot_of(ctx, rec["agent_id"]), limit=limit),
    )


async def get_trader_config(request: Request) -> Response:
    """Static configuration of one trader."""
    ctx = request.app.state.ctx
    rec = ctx.trader(request.path_params["trader_id"].strip())
    return ok(config_view(ctx, rec))


async def get_orders(request: Request) -> Response:
    """No resting orders exist in the simulator: always empty."""
    return ok([])


async def get_symbols(request: Request) -> Response:
    """Symbols for a trader (its pool), or the union of every pool, or the market data's symbols."""
    ctx = request.app.state.ctx
    agent_id = query_str(request, "trader_id")
    symbols: list[str] = []
    if agent_id:
        symbols = list(ctx.trader(agent_id).get("stock_pool") or [])
    if not symbols:
        for rec in ctx.svc.registry.available():
            symbols.extend(s for s in rec.get("stock_pool") or [] if s not in symbols)
    if not symbols:
        symbols = ctx.svc.market.symbols()
    names = ctx.svc.names
    return JSONResponse({"symbols": [
        {"symbol": s, "name": names.name_of(s) if names is not None else s, "category": "stock"} for s in symbols
    ]})


async def close_position(call: ControlCall) -> Response:
    """Sell a trader's whole position in `symbol` now, through the fill path (T+1 respected)."""
    ctx = call.request.app.state.ctx
    agent_id = call.request.path_params["trader_id"].strip()
    call.target = agent_id
    try:
        result = await position_close.close_position(ctx, agent_id, call.body, dry_run=call.dry_run)
    except OSError as exc:
        raise state_write_failed(exc, "close refused, the position is unchanged") from exc
    call.extra["close"] = {k: result[k] for k in ("symbol", "filled_quantity", "price", "order_id", "locked_shares")}
    if not call.dry_run:
        ctx.extra["viewer_streams"].state_changed(agent_id)  # the room shows the sale at once
    return ok(result)


def _hours(raw) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


routes = [
    read_route("/api/traders", get_traders),
    read_route("/api/competition", get_competition),
    read_route("/api/top-traders", get_top_traders),
    read_route("/api/status", get_status),
    read_route("/api/account", get_account),
    read_route("/api/positions", get_positions),
    read_route("/api/statistics", get_statistics),
    read_route("/api/equity-history", get_equity_history),
    read_route("/api/equity-history-batch", post_equity_history_batch, methods=["POST"]),
    read_route("/api/positions/history", get_positions_history),
    read_route("/api/traders/{trader_id}/config", get_trader_config),
    read_route("/api/orders", get_orders),
    read_route("/api/open-orders", get_orders, name="get_open_orders"),
    read_route("/api/symbols", get_symbols),
    control_route("/api/traders/{trader_id}/close-position", close_position, action="trader.close_position"),
]
