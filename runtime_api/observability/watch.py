"""One watcher over the runtime's in-memory state: the `Gate mode=... status=... reason=...` log
line whenever the gate or the kill switch changes, and the alerts for state changes no single
route sees (kill switch by file or env, pause, data going stale and fresh again, LLM breakers).

It compares values already in memory once a second. Only a change writes: one line appended to
`RUNTIME_STATE_DIR/gate-events.jsonl` (in a worker thread), which `onlytrade-ops report` reads to
say how long the gate held each agent and why, for any past day.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import anyio

from ..state.storage import append_jsonl

log = logging.getLogger("onlytrade.gate")

WATCH_S = 1.0
GATE_EVENTS = "gate-events.jsonl"


def gate_events_path(settings) -> Path:
    return settings.resolve(settings.runtime_state_dir) / GATE_EVENTS


def gate_event(ctx, status: str, reason: str) -> dict:
    gate = ctx.runtime.gate
    return {
        "ts_ms": int(time.time() * 1000), "mode": ctx.settings.runtime_data_mode, "status": status, "reason": reason,
        "kill_switch_sources": ctx.svc.kill_switch.sources(), "paused_reason": ctx.runtime.paused_reason,
        "running": list(gate.get("running_trader_ids") or []), "active": list(gate.get("active_trader_ids") or []),
        "blocked": dict(gate.get("blocked") or {}),
    }


def gate_line(ctx) -> tuple[str, str, str]:
    """(status, reason, the log line) for the runtime's current gate and kill-switch state."""
    rt = ctx.runtime
    mode = ctx.settings.runtime_data_mode
    ks = ctx.svc.kill_switch
    sources = ks.sources()
    running = rt.gate.get("running_trader_ids") or []
    active = rt.gate.get("active_trader_ids") or []
    if sources:
        status, reason = "killed", ",".join(sources)
    elif rt.paused_reason:
        status, reason = "paused", rt.paused_reason
    elif not active:
        status = "held"
        blocked = sorted(set((rt.gate.get("blocked") or {}).values()))
        reason = ",".join(blocked) if blocked else (rt.state_reason() or "no_running_agents")
    else:
        status = "open"
        blocked = sorted(set((rt.gate.get("blocked") or {}).values()))
        reason = ("partial:" + ",".join(blocked)) if blocked else "ok"
    line = f"Gate mode={mode} status={status} reason={reason} active={len(active)}/{len(running)}"
    return status, reason, line


class StateWatcher:
    def __init__(self, ctx, alerts):
        self.ctx = ctx
        self.alerts = alerts
        self._gate: tuple | None = None
        self.pending: list[dict] = []  # gate events not yet appended to gate-events.jsonl
        self._kill: bool | None = None
        self._paused: str | None = None
        self._stale: dict[tuple[str, str], bool] = {}
        self._breakers: dict[str, str] = {}

    def check(self) -> None:
        """Compare the state with the last look; log and alert the changes."""
        ctx = self.ctx
        rt = ctx.runtime
        first = self._kill is None  # the first look is the baseline: boot state is not a change
        status, reason, line = gate_line(ctx)
        seen = (status, reason, tuple(sorted((rt.gate.get("blocked") or {}).items())))
        if self._gate != seen:
            if self._gate is None or self._gate[:2] != seen[:2]:
                log.info("%s", line)
            self._gate = seen
            self.pending.append(gate_event(ctx, status, reason))

        ks = ctx.svc.kill_switch
        kill = ks.active
        if not first and kill != self._kill:
            if kill:
                self.alerts.notify("kill_switch.on", "Kill switch ON: no agent decides", severity="critical",
                                   sources=",".join(ks.sources()), reason=ks.state.get("reason"), by=ks.state.get("activated_by"))
            else:
                self.alerts.notify("kill_switch.off", "Kill switch off: agents may decide again", severity="warning",
                                   by=ks.state.get("deactivated_by"))
        self._kill = kill

        paused = rt.paused_reason
        if not first and paused != self._paused:
            if paused:
                self.alerts.notify("runtime.paused", "Runtime paused", reason=paused)
            elif self._paused:
                self.alerts.notify("runtime.resumed", "Runtime resumed", severity="info", was=self._paused)
        self._paused = paused

        if ctx.settings.live_mode:
            self._check_live(ctx)
        for agent_id, breaker in list(rt.breakers.items()):
            state = "closed" if breaker.state == "closed" else "open"
            before = self._breakers.get(agent_id, "closed")
            if state != before:
                if state == "open":
                    # One kind for every agent: a provider outage opens them all at once (one message, a count).
                    self.alerts.notify("llm_breaker.open", f"LLM breaker open for {agent_id}: heuristic decisions",
                                       agent=agent_id, reason=breaker.last_failure_reason,
                                       failures=breaker.consecutive_failures)
                else:
                    self.alerts.notify("llm_breaker.closed", f"LLM breaker closed for {agent_id}", severity="info",
                                       agent=agent_id)
            self._breakers[agent_id] = state

    def _check_live(self, ctx) -> None:
        for kind in ("frames", "overview", "news", "breadth"):
            for market, provider in (getattr(ctx.svc.live, kind, None) or {}).items():
                st = provider.status()
                if st.get("last_load_ts_ms") is None and not st.get("last_error"):
                    continue  # never loaded (not configured here): preflight reports it, not an incident
                stale = bool(st.get("stale")) or bool(st.get("last_error"))
                key = (kind, market)
                before = self._stale.get(key)
                if before is not None and stale != before:
                    if stale:
                        self.alerts.notify(f"data.stale.{kind}.{market}", f"Live {kind} {market} stale",
                                           file=st.get("file"), reason=st.get("stale_reason") or st.get("last_error"),
                                           age_s=round((st.get("data_age_ms") or 0) / 1000) if st.get("data_age_ms") else None)
                    else:
                        self.alerts.notify(f"data.fresh.{kind}.{market}", f"Live {kind} {market} fresh again", severity="info",
                                           file=st.get("file"))
                self._stale[key] = stale

    async def flush(self) -> None:
        """Append the pending gate events (worker thread); kept for the next try if the disk fails."""
        if not self.pending:
            return
        events, self.pending = self.pending, []
        try:
            await anyio.to_thread.run_sync(append_jsonl, gate_events_path(self.ctx.settings), events)
        except OSError as exc:
            log.warning("gate-events append failed (%s); will retry", type(exc).__name__)
            self.pending = (events + self.pending)[-1000:]

    async def run(self, every_s: float = WATCH_S) -> None:
        while True:
            try:
                self.check()
                await self.flush()
            except Exception:
                log.exception("state watcher failed")
            await asyncio.sleep(every_s)
