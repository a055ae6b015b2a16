"""Agent runtime: status, control (pause/resume/step/cadence), kill switch, memory, market context."""

from __future__ import annotations

import math

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ..audience import audience_status
from .. import clock
from ..access.control_route import ControlCall, control_route, read_route
from ..errors import ApiError, bad_request
from ..web.http import query_int, query_str
from ..state.memory import default_snapshot, utc_iso
from ..web.responses import ok
from ..market.calendar import market_of_exchange
from ..state.write_health import state_write_failed, state_writes_view


def runtime_summary(ctx) -> dict:
    rt = ctx.runtime
    return {**rt.state(), "metrics": dict(rt.metrics), "decision_every_bars": rt.decision_every_bars}


def kill_switch_view(ctx) -> dict:
    s = ctx.settings
    return ctx.svc.kill_switch.snapshot(control_token_required=s.control_token_configured or not s.control_api_allow_unauthenticated)


def _files(ctx, group: str) -> dict:
    providers = getattr(ctx.svc.live, group)
    return {key: (providers[m].status() if m in providers else None) for key, m in (("cn_a", "CN-A"), ("us", "US"))}


def live_freshness(ctx) -> dict:
    """Freshness of every live file (blocking: worker thread); `ok` follows the CN frames file."""
    if not ctx.settings.live_mode:
        return {"ok": True, "skipped": True, "reason": "replay_mode", "checks": {}}
    report = ctx.freshness_report()
    checks = {row["label"]: row for row in report["checks"]}
    return {
        "ok": bool((checks.get("cn_a_frames") or {}).get("ok")),
        "phase": report.get("phase"),
        "required_ok": report["ok"],
        "required_fail_count": report["required_fail_count"],
        "ts_ms": report["ts_ms"],
        "checks": checks,
    }


def runtime_status(ctx, freshness: dict) -> dict:
    s = ctx.settings
    rt = ctx.runtime
    agents = []
    for agent_id in ctx.svc.registry.running_ids() or []:
        breaker = rt.breakers.get(agent_id)
        agents.append({
            "trader_id": agent_id,
            "call_count": rt.call_count(agent_id),
            "in_flight": agent_id in rt.in_flight,
            "last_error": rt.agent_errors.get(agent_id),
            "excluded_symbols": rt.exclusions.get(agent_id, {}),
            "memory_error": ctx.svc.memory.errored().get(agent_id),
            "llm_breaker": breaker.status() if breaker else None,
        })
    return {
        **runtime_summary(ctx),
        "symbol_selection": {"strict_symbol_loop": s.agent_strict_symbol_loop},
        "market_session_guard": rt.gate,
        "market_overview_files": _files(ctx, "overview"),
        "news_digest_files": _files(ctx, "news"),
        "market_breadth_files": _files(ctx, "breadth"),
        "live_data_freshness": freshness,
        "kill_switch": kill_switch_view(ctx),
        "llm": {
            "enabled": s.agent_llm_enabled,
            "effective_enabled": rt.llm is not None,
            "model": s.decision_model,
            "token_saver": s.agent_llm_dev_token_saver,
            "max_output_tokens": s.agent_llm_max_output_tokens,
            "calls_attempted": rt.llm_calls["attempted"],
            "replay_llm": s.replay_llm,
            "failures": dict(rt.llm_failures),
        },
        "sink_errors": dict(rt.sink_errors),
        "state_writes": state_writes_view(ctx.svc.memory, ctx.svc.kill_switch, rt),
        "discarded_cycles": rt.discarded_cycles,
        "memory_errors": ctx.svc.memory.errored(),
        "event_loop": ctx.loop_monitor.status(),
        "gc": ctx.extra["heap"].status() if "heap" in ctx.extra else {"installed": False},
        "stream_door": ctx.extra["stream_door"].status() if "stream_door" in ctx.extra else None,
        "response_cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses},
        "chat_streaming": audience_status(ctx),
        "viewer_bus": ctx.extra["viewer_bus"].status() if "viewer_bus" in ctx.extra else {"enabled": False},
        "traders": agents,
        "clock": clock.status(),
        "live_file_watch": rt.watcher.status() if rt.watcher is not None else {"enabled": False},
    }


async def get_runtime_status(request: Request) -> Response:
    """The decision loop's state, metrics, gate, kill switch, LLM health and per-agent errors."""
    from ..web.read_caches import runtime_status_response

    return await runtime_status_response(request.app.state.ctx)


def _number(body: dict, key: str, code: str) -> float:
    try:
        value = float(body.get(key))
    except (TypeError, ValueError):
        raise bad_request(code, f"{key} must be a number") from None
    if not math.isfinite(value):
        raise bad_request(code, f"{key} must be a finite number")
    return value


async def post_runtime_control(call: ControlCall) -> Response:
    """Pause, resume, step one cycle, or change the cadence."""
    ctx = call.request.app.state.ctx
    rt = ctx.runtime
    action = str(call.body.get("action") or "").strip().lower()
    if not ctx.ready:
        raise ApiError(503, "agent_runtime_unavailable", "runtime is still booting")
    if action in ("resume", "step") and ctx.svc.kill_switch.active:
        raise ApiError(423, "kill_switch_active", "deactivate the kill switch first")
    result = None
    persisted = None
    if action == "pause":
        persisted = await rt.pause("manual")
        if not persisted:
            call.extra["persisted"] = False  # the audit says the pause holds in memory only
    elif action == "resume":
        try:
            await rt.resume()
        except OSError as exc:
            raise state_write_failed(exc, "resume refused, the runtime stays paused and nothing changed") from exc
    elif action == "step":
        result = await rt.run_cycle(force=True)
    elif action == "set_cycle_ms":
        rt.set_cycle_ms(_number(call.body, "cycle_ms", "invalid_cycle_ms"))
    elif action == "set_decision_every_bars":
        rt.set_decision_every_bars(_number(call.body, "decision_every_bars", "invalid_decision_every_bars"))
    else:
        raise bad_request("invalid_action", "action must be pause, resume, step, set_cycle_ms or set_decision_every_bars")
    ctx.extra["viewer_streams"].state_changed()  # viewers see pause/resume at once
    data = {"action": action, "state": rt.state(), "metrics": dict(rt.metrics), "decision_every_bars": rt.decision_every_bars}
    if result is not None:
        data["cycle"] = result
    if persisted is not None:
        data["persisted"] = persisted
    return ok(data)


async def post_kill_switch(call: ControlCall) -> Response:
    """Activate or deactivate the kill switch (persisted; no LLM call and no order while active)."""
    ctx = call.request.app.state.ctx
    action = str(call.body.get("action") or "").strip().lower()
    ks = ctx.svc.kill_switch
    if action == "activate":
        await anyio.to_thread.run_sync(lambda: ks.activate(reason=str(call.body.get("reason") or ""), actor=call.actor))
        if ctx.svc.replay:
            ctx.svc.replay.pause()
        if not ks.persisted:
            call.extra["persisted"] = False  # the audit says the kill switch holds in memory only
    elif action == "deactivate":
        try:
            await anyio.to_thread.run_sync(lambda: ks.deactivate(actor=call.actor))
        except OSError as exc:
            raise state_write_failed(exc, "deactivate refused, the kill switch stays ON and nothing changed") from exc
    else:
        raise bad_request("invalid_action", "action must be activate or deactivate")
    ctx.runtime.bump()
    ctx.extra["viewer_streams"].state_changed()  # every watched room shows the kill switch at once
    return ok({
        "action": action,
        "persisted": ks.persisted,
        "kill_switch": kill_switch_view(ctx),
        "runtime": runtime_summary(ctx),
        "replay": ctx.svc.replay.status() if ctx.svc.replay else None,
    })


async def get_agent_memory(request: Request) -> Response:
    """One agent's memory snapshot, or every registered agent's."""
    ctx = request.app.state.ctx
    agent_id = query_str(request, "trader_id")
    memory = ctx.svc.memory
    if agent_id:
        rec = ctx.svc.registry.get(agent_id)
        if not rec or rec.get("available") is False:
            raise ApiError(404, "memory_not_found", f"no registered agent {agent_id!r}")
        snap = await anyio.to_thread.run_sync(memory.get, agent_id)
        if snap is None and agent_id in memory.errored():  # a corrupt file, quarantined: not a fresh agent
            raise ApiError(409, "agent_memory_corrupt", memory.errored()[agent_id])
        if snap is None:  # registered, never decided: its initial snapshot, as Node (nothing is written)
            snap = default_snapshot(agent_id, rec.get("agent_name") or agent_id, ctx.settings, utc_iso(),
                                    market=market_of_exchange(str(rec.get("exchange_id") or "")))
        return ctx.cache.get(("memory", agent_id), ctx.state_version(), lambda: snap)

    def build():
        out = []
        for rid in ctx.svc.registry.lobby_ids():
            snap = memory.get(rid)
            if snap is not None:
                out.append(snap)
        return out

    return ctx.cache.get("memory-all", ctx.state_version(), build)


async def get_market_context(request: Request) -> Response:
    """The full agent.market_context.v1 an agent would see for a symbol now."""
    ctx = request.app.state.ctx
    from ..decision import context_for_api

    agent_id = query_str(request, "trader_id")
    rec = ctx.trader_or_default(agent_id)
    symbol = query_str(request, "symbol").upper() or (rec.get("stock_pool") or ctx.svc.market.symbols() or [""])[0]
    intraday_limit = query_int(request, "intraday_limit", 180, 1, 2000)
    daily_limit = query_int(request, "daily_limit", 90, 1, 2000)
    interval = query_str(request, "intraday_interval") or "1m"
    source = query_str(request, "source") or None

    def build():
        from ..portfolio import accounting as portfolio
        from ..market.calendar import market_of_exchange, trading_day_of

        svc = ctx.svc
        intraday = svc.market.get_frames(symbol, interval, intraday_limit, source=source)["frames"]
        daily = svc.market.get_frames(symbol, "1d", daily_limit, source=source)["frames"]
        market = market_of_exchange(str(rec.get("exchange_id") or ""))
        clock = ctx.runtime.clock_ms()
        snapshot = svc.memory.get(rec["agent_id"])
        day = trading_day_of(clock, market)
        return context_for_api(
            symbol=symbol, intraday=intraday, daily=daily,
            portfolio=portfolio.portfolio_input(snapshot, day) if snapshot else {"cash": 100000.0, "holdings": [], "sellable": {}, "total_equity": 100000.0},
            memory_state={k: (snapshot or {}).get(k) for k in ("replay", "stats", "holdings", "recent_actions")},
            settings=ctx.settings, market=market, now_ms=clock,
        )

    return ok(await anyio.to_thread.run_sync(build))


routes = [
    read_route("/api/agent/runtime/status", get_runtime_status),
    control_route("/api/agent/runtime/control", post_runtime_control,
                  action=lambda b: f"agent.runtime.control.{str(b.get('action') or '').strip().lower() or 'none'}"),
    control_route("/api/agent/runtime/kill-switch", post_kill_switch,
                  action=lambda b: f"agent.runtime.kill_switch.{str(b.get('action') or '').strip().lower() or 'none'}",
                  role=lambda b: "admin" if str(b.get("action") or "").strip().lower() == "deactivate" else "operator"),
    read_route("/api/agent/memory", get_agent_memory),
    read_route("/api/agent/market-context", get_market_context),
]
