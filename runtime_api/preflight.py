"""Live preflight: every check an operator needs green before going live, each with a level and reason.

Levels: PASS, WARN (go-live possible, but look), FAIL (do not go live). The verdict `ok` is true
when nothing FAILs. It reads state and probes the LLM; it never writes anything.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx

from .state.write_health import state_writes_view
from . import clock


LLM_PROBE_TIMEOUT_S = 3.0


def check(ok: bool, reason: str | None = None, *, warn: bool = False, **extra: Any) -> dict:
    level = "PASS" if ok else ("WARN" if warn else "FAIL")
    return {"ok": ok or warn, "level": level, "reason": reason if not ok else None, **extra}


async def probe_llm(settings) -> tuple[bool, str | None]:
    """GET {base}/models: answers without spending tokens on any OpenAI-compatible server."""
    url = settings.openai_base_url.rstrip("/") + "/models"
    try:
        async with httpx.AsyncClient(timeout=LLM_PROBE_TIMEOUT_S) as client:
            resp = await client.get(url, headers={"Authorization": f"Bearer {settings.openai_api_key}"})
    except httpx.TimeoutException:
        return False, "llm_timeout"
    except httpx.HTTPError:
        return False, "llm_unreachable"
    if resp.status_code >= 400:
        return False, f"llm_http_{resp.status_code}"
    return True, None


def clock_check() -> dict:
    """WARN whenever the clock is simulated: a rehearsal, never a show."""
    state = clock.status()
    return {**check(not state["simulated"], "simulated_clock: ONLYTRADE_CLOCK is set (rehearsal)", warn=True), "state": state}


def pool_symbols(ctx, running: list[str]) -> dict:
    """Per running agent: how many pool symbols have usable intraday and daily data now (blocking).

    All usable -> PASS; some -> WARN naming the others with their reasons; none -> FAIL. The same
    `MarketDataService.assess` the decision cycle uses to leave a symbol out."""
    market = ctx.svc.market
    agents: dict[str, dict] = {}
    for agent_id in running:
        # An agent without a pool decides over every symbol the market serves (AgentRuntime._gather).
        pool = list((ctx.svc.registry.get(agent_id) or {}).get("stock_pool") or []) or list(market.symbols())
        rows = [market.symbol_health(symbol) for symbol in pool]
        unusable = {r["symbol"]: r["reason"] for r in rows if not r["usable"]}
        agents[agent_id] = {
            "pool_count": len(pool),
            "usable_count": len(pool) - len(unusable),
            "intraday_usable_count": sum(1 for r in rows if r["intraday"] is None),
            "daily_usable_count": sum(1 for r in rows if r["daily"] is None),
            "unusable": unusable,
            "level": "PASS" if pool and not unusable else ("FAIL" if len(unusable) == len(pool) else "WARN"),
        }
    failing = sorted(a for a, v in agents.items() if v["level"] == "FAIL")
    warning = {a: sorted(v["unusable"]) for a, v in agents.items() if v["level"] == "WARN"}
    if not agents:
        return {**check(False, "no_running_agents", warn=True), "agents": agents}
    if failing:
        return {**check(False, "no_usable_symbols: " + ",".join(failing)), "agents": agents}
    if warning:
        named = "; ".join(f"{a}: {','.join(syms)}" for a, syms in sorted(warning.items()))
        return {**check(False, f"unusable_symbols: {named}", warn=True), "agents": agents}
    return {**check(True), "agents": agents}
def kill_switch_check(kill: dict) -> dict:
    """FAIL names every source holding it on; the API's reason only when the API holds it (after a
    deactivate the file keeps the old reason, which must not explain an env or file stop)."""
    api = "api" in kill["sources"]
    reason = "kill_switch_active: " + ",".join(kill["sources"])
    if api and kill.get("reason"):
        reason += f" ({kill['reason']})"
    return {**check(not kill["active"], reason), "sources": kill["sources"],
            "api_reason": kill.get("reason") if api else None}


def state_writes_check(writes: dict) -> dict:
    """FAIL while snapshot or replay-position saves fail or a kill switch or pause holds in memory only."""
    last = next((writes[k]["last_error"] for k in ("snapshots", "replay_position", "kill_switch", "pause")
                 if writes[k].get("last_error")), None) or {}
    detail = f" ({last.get('errno')} on {last.get('file')})" if last and writes["problems"] else ""
    return {**check(writes["ok"], ",".join(writes["problems"]) + detail), "problems": writes["problems"]}


async def live_preflight(ctx) -> dict:
    s = ctx.settings
    svc = ctx.svc
    now_ms = clock.now_ms()
    fresh = await anyio.to_thread.run_sync(ctx.freshness_report)
    rows = {r["label"]: r for r in fresh["checks"]}
    frames = rows.get("cn_a_frames") or {}
    daily = rows.get("cn_a_daily") or {}
    others_failing = [r["label"] for r in fresh["checks"] if r["required"] and not r["ok"] and r["label"] not in ("cn_a_frames", "cn_a_daily")]

    registered = svc.registry.registered()
    running = svc.registry.running_ids()
    pools = await anyio.to_thread.run_sync(pool_symbols, ctx, list(running or []))
    gate = ctx.runtime.gate  # read-only: preflight never re-evaluates or resumes anything (W5)
    expected = s.live_preflight_expected_registry_count
    registry_ok = len(registered) >= expected if expected > 0 else len(registered) > 0

    errored = svc.memory.errored()
    unreadable = {}
    for rec in registered:
        if rec["agent_id"] in errored:
            unreadable[rec["agent_id"]] = errored[rec["agent_id"]]
    kill = svc.kill_switch.snapshot()

    if not s.agent_llm_enabled:
        llm = check(False, "heuristic_only: AGENT_LLM_ENABLED=false", warn=True, model=None)
    elif not s.openai_api_key:
        llm = check(False, "llm_enabled_but_no_api_key: the heuristic decides", warn=True, model=s.decision_model)
    else:
        answering, reason = await probe_llm(s)
        llm = check(answering, reason, model=s.decision_model)

    checks = {
        "data_mode": check(s.live_mode, "runtime_data_mode_is_replay", expected="live_file", actual=s.runtime_data_mode),
        "strict_live_mode": check(s.strict_live_mode, "strict_live_mode_off", expected=True, actual=s.strict_live_mode),
        "freshness": {
            **check(bool(frames.get("ok")), frames.get("error") or ("cn_a_frames_stale" if frames else "cn_a_frames_missing")),
            "markets": {"cn_a": frames, "us": rows.get("us_frames")},
            "phase": fresh.get("phase"),
            "supplemental": check(not others_failing, "stale_or_missing: " + ",".join(others_failing), warn=True),
            "checks": fresh["checks"],
        },
        "daily_history": check(bool(daily.get("ok")),
                               daily.get("error") or ("cn_a_daily_stale" if daily else "cn_a_daily_missing"),
                               newest_trading_day=daily.get("newest_trading_day"),
                               expected_trading_day=daily.get("expected_trading_day")),
        "pool_symbols": pools,
        "registry_count": {
            **check(registry_ok, "too_few_registered_agents"),
            "registered_count": len(registered),
            "running_count": len(running),
            "active_count": len(gate.get("active_trader_ids") or []),
            "expected_min_count": expected if expected > 0 else 1,
        },
        "market_gate": {**check(bool(gate.get("enabled")), "session_gate_disabled"), "state": gate},
        "snapshots": {**check(not unreadable, "corrupt_snapshots"), "errored": unreadable, "checked": len(registered)},
        "kill_switch": kill_switch_check(kill),
        "state_writes": state_writes_check(state_writes_view(svc.memory, svc.kill_switch, ctx.runtime)),
        "control_token": check(s.control_token_configured, "control_token_not_configured"),
        "llm": llm,
        "clock": clock_check(),
    }
    return {"ok": all(c["ok"] for c in checks.values()), "ts_ms": now_ms, "phase": fresh.get("phase"), "checks": checks}
