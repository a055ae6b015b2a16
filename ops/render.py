"""Human output: one rich renderer per view; anything unknown falls back to a key/value table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from runtime_api import clock

LEVEL_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red"}


def cell(value: Any, width: int | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) >= 1000 else f"{value:g}"
    elif isinstance(value, (dict, list)):
        text = orjson.dumps(value).decode()
    else:
        text = str(value)
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def yes(ok: Any) -> Text:
    return Text("yes", style="green") if ok else Text("NO", style="bold red")


def kv(title: str, items: dict[str, Any] | Iterable[tuple[str, Any]], width: int = 100) -> Group:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in (items.items() if isinstance(items, dict) else items):
        table.add_row(str(key), value if isinstance(value, Text) else cell(value, width))
    return Group(Text(title, style="bold"), table, Text(""))


def rows(title: str, records: list[dict], columns: list[tuple[str, str | Callable[[dict], Any]]], width: int = 60) -> Table:
    table = Table(title=title, title_justify="left")
    for i, (header, _) in enumerate(columns):
        table.add_column(header, overflow="fold", no_wrap=i == 0)
    for record in records:
        values = []
        for _, key in columns:
            value = key(record) if callable(key) else record.get(key)
            values.append(value if isinstance(value, Text) else cell(value, width))
        table.add_row(*values)
    if not records:
        table.caption = "(none)"
    return table


def ago(ms: Any) -> str:
    if not isinstance(ms, (int, float)) or not ms:
        return "-"
    seconds = max(0, (clock.now_ms() - ms) / 1000)  # the runtime's clock, simulated in a rehearsal
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


# ---- views ----------------------------------------------------------------------------------


def view_health(c: Console, d: dict) -> None:
    c.print(kv("health", d if isinstance(d, dict) else {"body": d}))


def api_reason(ks: dict) -> str:
    """The API's reason, only while the API holds the switch: after a deactivate the file keeps the
    old reason, which must not explain a stop by KILL_SWITCH=1 or the flag file."""
    return str(ks.get("reason") or "") if "api" in (ks.get("sources") or []) else ""


def _runtime_table(rt: dict) -> Group:
    ks = rt.get("kill_switch") or {}
    llm = rt.get("llm") or {}
    m = rt.get("metrics") or {}
    return kv("agent runtime", {
        "running": yes(rt.get("running")),
        "paused_reason": rt.get("paused_reason"),
        "cycle_ms": rt.get("cycle_ms"),
        "decision_every_bars": rt.get("decision_every_bars"),
        "cycles (ok/failed/total)": f"{m.get('successfulCycles', 0)}/{m.get('failedCycles', 0)}/{m.get('totalCycles', 0)}",
        "last cycle": ago(rt.get("last_cycle_completed_ms")),
        "in_flight": rt.get("in_flight"),
        "kill_switch": Text(f"ACTIVE ({', '.join(ks.get('sources') or [])}) {api_reason(ks)}", style="bold red") if ks.get("active") else "off",
        "gate": "on" if (rt.get("market_session_guard") or {}).get("enabled") else "off",
        "active agents": ", ".join((rt.get("market_session_guard") or {}).get("active_trader_ids") or []) or "-",
        "held by the gate": ", ".join(f"{a} ({r})" for a, r in ((rt.get("market_session_guard") or {}).get("blocked") or {}).items()) or "-",
        "llm": f"{'on' if llm.get('effective_enabled') else 'off'} model={llm.get('model')} failures={cell(llm.get('failures'))}",
        "live data": "skipped (replay)" if (rt.get("live_data_freshness") or {}).get("skipped") else yes((rt.get("live_data_freshness") or {}).get("ok")),
        "clock": _clock_text(rt.get("clock") or {}),
        "session phase": (rt.get("live_data_freshness") or {}).get("phase") or "-",
        "state writes": _state_writes(rt.get("state_writes")),
    })


def _state_writes(writes: dict | None) -> Any:
    """`ok`, or the problems with the errno and file of the last failure (a full disk shows here)."""
    if not writes:
        return "-"
    if writes.get("ok"):
        return "ok"
    last = next((writes[k]["last_error"] for k in ("snapshots", "replay_position", "kill_switch", "pause")
                 if (writes.get(k) or {}).get("last_error")), None) or {}
    return Text(f"FAILING {', '.join(writes.get('problems') or [])} ({last.get('errno')} on {last.get('file')})", style="bold red")
def _clock_text(state: dict) -> Text | str:
    if not state.get("simulated"):
        return "wall clock"
    return Text(f"SIMULATED {state.get('now')} (from {state.get('start')}, {state.get('speed')}x): a rehearsal", style="bold yellow")


def _replay_table(rp: dict) -> Group:
    if rp.get("cursor_index", -1) == -1 and not rp.get("timeline_length"):
        return kv("replay", {"data_mode": rp.get("data_mode"), "replay": "not active"})
    return kv("replay", {
        "data_mode": rp.get("data_mode"),
        "running": yes(rp.get("running")),
        "speed (bars/min)": rp.get("speed"),
        "loop": rp.get("loop"),
        "cursor": f"{rp.get('cursor_index')}/{rp.get('timeline_length')}",
        "trading_day": f"{rp.get('trading_day')} (day {rp.get('day_index')}/{rp.get('day_count')}, bar {rp.get('day_bar_index')}/{rp.get('day_bar_count')})",
        "completed": rp.get("completed"),
    })


def view_status(c: Console, d: dict) -> None:
    h = d.get("health") or {}
    c.print(kv("health", {"ok": yes(h.get("ok")), "uptime_s": h.get("uptime_s"), "ready": h.get("ready"), "data_mode": h.get("data_mode")}))
    rt = d.get("runtime") or {}
    c.print(_runtime_table(rt))
    c.print(rows("agents", rt.get("traders") or [], [
        ("trader", "trader_id"), ("decisions", "call_count"), ("in flight", "in_flight"),
        ("last error", "last_error"), ("memory error", "memory_error"), ("llm breaker", "llm_breaker"),
        ("left out", lambda r: ", ".join(f"{s} ({why})" for s, why in (r.get("excluded_symbols") or {}).items()) or "-"),
    ]))
    c.print(_replay_table(d.get("replay") or {}))


def view_preflight(c: Console, d: dict) -> None:
    phase = f" (phase {d['phase']})" if d.get("phase") else ""
    table = Table(title=f"live preflight: {'OK' if d.get('ok') else 'NOT OK'}{phase}", title_justify="left")
    for col in ("check", "level", "reason"):
        table.add_column(col, overflow="fold")
    for name, chk in (d.get("checks") or {}).items():
        level = chk.get("level", "PASS" if chk.get("ok") else "FAIL")
        table.add_row(name, Text(level, style=LEVEL_STYLE.get(level, "")), cell(chk.get("reason")))
        sup = chk.get("supplemental") if isinstance(chk, dict) else None
        if isinstance(sup, dict):
            table.add_row("  freshness.supplemental", Text(sup.get("level", ""), style=LEVEL_STYLE.get(sup.get("level"), "")), cell(sup.get("reason")))
    c.print(table)


def view_agents(c: Console, d: list) -> None:
    c.print(rows("agents", d, [
        ("agent", "agent_id"), ("name", "agent_name"), ("model", "ai_model"), ("exchange", "exchange_id"),
        ("style", "trading_style"), ("risk", "risk_profile"), ("status", lambda r: r.get("status", "-")),
        ("lobby", lambda r: r.get("show_in_lobby", "-")), ("pool", lambda r: len(r.get("stock_pool") or [])),
    ]))


def _trader_of(r: dict) -> Any:
    if r.get("trader_id"):
        return r["trader_id"]
    log = r.get("execution_log") or []
    if log and isinstance(log[0], str) and " | " in log[0]:
        return log[0].split(" | ", 1)[1].split(" -> ")[0]
    return None


def view_decisions(c: Console, d: list) -> None:
    def first(r: dict) -> dict:
        return (r.get("decisions") or [{}])[0] or {}

    c.print(rows("decisions", d, [
        ("time", lambda r: str(r.get("timestamp") or "-").replace("T", " ")[:19]), ("trader", _trader_of), ("cycle", "cycle_number"),
        ("action", lambda r: first(r).get("action")), ("symbol", lambda r: first(r).get("symbol")),
        ("qty", lambda r: first(r).get("quantity")), ("price", lambda r: first(r).get("price")),
        ("source", "decision_source"), ("reasoning", lambda r: cell(first(r).get("reasoning"), 80)),
    ], width=90))


def view_memory(c: Console, d: Any) -> None:
    snaps = d if isinstance(d, list) else [d]
    c.print(rows("memory snapshots", snaps, [
        ("trader", "trader_id"), ("name", "trader_name"),
        ("equity", lambda r: (r.get("stats") or {}).get("latest_total_balance")),
        ("cash", lambda r: (r.get("stats") or {}).get("latest_available_balance")),
        ("return %", lambda r: (r.get("stats") or {}).get("return_rate_pct")),
        ("holdings", lambda r: ", ".join(f"{h.get('symbol')}x{h.get('shares')}" for h in r.get("holdings") or []) or "-"),
        ("decisions", lambda r: (r.get("stats") or {}).get("decisions")),
        ("updated", "updated_at"),
    ]))


def view_control(c: Console, d: dict) -> None:
    replay = d.get("replay") or {}
    c.print(kv(d.get("action", "control"), {
        "agent runtime": (d.get("agent_runtime") or {}).get("state", {}).get("paused_reason") or "running",
        "replay": "skipped (live_file mode)" if replay.get("skipped") else ("running" if (replay.get("state") or {}).get("running") else "paused"),
    }))
    view_status(c, d.get("status") or {})


def view_step(c: Console, d: dict) -> None:
    cycle = d.get("cycle") or {}
    c.print(kv("step", {"mode": d.get("mode"), "bars": d.get("bars"), "ran": yes(cycle.get("ran")), "reason": cycle.get("reason"),
                        "cursor": (d.get("state") or {}).get("cursor_index")}))
    c.print(rows("decisions", cycle.get("decisions") or [], [
        ("trader", "trader_id"), ("cycle", "cycle_number"),
        ("action", lambda r: (r.get("decision") or {}).get("action")), ("symbol", lambda r: (r.get("decision") or {}).get("symbol")),
        ("qty", lambda r: (r.get("decision") or {}).get("quantity")), ("executed", lambda r: (r.get("decision") or {}).get("executed")),
        ("reasoning", lambda r: cell((r.get("decision") or {}).get("reasoning"), 70)),
    ], width=80))


def view_replay_control(c: Console, d: dict) -> None:
    c.print(_replay_table(d.get("state") or {}))


def view_agent_control(c: Console, d: dict) -> None:
    c.print(kv(d.get("action", "control"), {**(d.get("state") or {}), "decision_every_bars": d.get("decision_every_bars")}))


def view_kill_switch(c: Console, d: dict) -> None:
    ks = d.get("kill_switch") or {}
    c.print(kv("kill switch", {
        "active": Text("ACTIVE", style="bold red") if ks.get("active") else Text("off", style="green"),
        "sources": ", ".join(ks.get("sources") or []) or "-",
        "reason": api_reason(ks) or "-", "activated": f"{cell(ks.get('activated_at'))} by {cell(ks.get('activated_by'))}",
        "persisted": Text("NO: in memory only (disk full?); a restart would forget it", style="bold red")
        if ks.get("persisted") is False else "yes",
        "deactivated": f"{cell(ks.get('deactivated_at'))} by {cell(ks.get('deactivated_by'))}",
        "runtime": (d.get("runtime") or {}).get("paused_reason") or "running",
    }))


def view_reset(c: Console, d: dict) -> None:
    head = {k: d.get(k) for k in ("action", "trader_id", "dry_run", "cursor_index", "use_warmup", "reset_memory",
                                   "reset_positions", "reset_stats", "backup") if k in d}
    c.print(kv("reset (DRY RUN: nothing changed)" if d.get("dry_run") else "reset", head))
    plan = d.get("would_reset") or {}
    agents = plan.get("agents") if isinstance(plan.get("agents"), list) else ([plan] if plan.get("trader_id") else [])
    if agents:
        c.print(rows("would clear", agents, [
            ("trader", "trader_id"), ("file", "file"), ("exists", "exists"),
            *[(h, (lambda r, k=k: (r.get("clears") or {}).get(k))) for h, k in
              (("holdings", "holdings"), ("lots", "open_lots"), ("closed", "closed_positions"), ("events", "trade_events"),
               ("journal", "daily_journal"), ("actions", "recent_actions"), ("curve", "equity_points"), ("decisions", "decisions"))],
        ]))


def view_record(c: Console, d: Any) -> None:
    c.print(kv("result", d if isinstance(d, dict) else {"result": d}))


def view_continuity_snapshot(c: Console, d: dict) -> None:
    rt = d.get("runtime") or {}
    files = d.get("files") or {}
    c.print(rows(f"memory files ({d.get('memory_dir')})", [{"file": k, **v} for k, v in files.items()], [
        ("file", "file"), ("size", "size"), ("sha256", lambda r: r["sha256"][:16]),
    ]))
    if "registry" in rt:
        c.print(rows("runtime", [{"agent_id": k, **v, "equity": (rt.get("equity") or {}).get(k)} for k, v in rt["registry"].items()], [
            ("agent", "agent_id"), ("status", "status"), ("lobby", "show_in_lobby"), ("equity", "equity"),
        ]))


def view_continuity_verify(c: Console, d: dict) -> None:
    f = d.get("files") or {}
    table = Table(title=f"continuity: {'CHANGED' if d.get('changed') else 'no change'}", title_justify="left")
    for col in ("what", "item", "A", "B"):
        table.add_column(col, overflow="fold")
    for name in f.get("added", []):
        table.add_row("file added", name, "-", "present")
    for name in f.get("removed", []):
        table.add_row("file removed", name, "present", "-")
    for ch in f.get("changed", []):
        table.add_row("file changed", ch["file"], f"{ch['sha256_a']} ({ch['size_a']} B)", f"{ch['sha256_b']} ({ch['size_b']} B)")
    reg = d.get("registry") or {}
    for agent in reg.get("added", []):
        table.add_row("registered", agent, "-", "yes")
    for agent in reg.get("removed", []):
        table.add_row("unregistered", agent, "yes", "-")
    for ch in reg.get("changed", []):
        for field, (a, b) in ch["fields"].items():
            table.add_row(f"registry.{field}", ch["agent_id"], cell(a), cell(b))
    for ch in d.get("equity") or []:
        table.add_row("equity", ch["agent_id"], cell(ch["a"]), cell(ch["b"]))
    table.caption = f"{f.get('unchanged', 0)} memory file(s) unchanged"
    c.print(table)


def view_probe(c: Console, d: dict) -> None:
    c.print(kv("health-restart-probe", {
        "healthy": yes(d.get("healthy")), "health_ok": d.get("health_ok"), "heartbeat_ok": d.get("heartbeat_ok"),
        "api_base": d.get("api_base"),
        "listeners": f"{cell(d.get('listener_count'))} on port {d.get('api_port')} ({cell(d.get('listener_source'))})",
        "runtime pid": cell(d.get("runtime_pids")), "uptime_s": (d.get("health") or {}).get("uptime_s"), "error": d.get("error"),
    }))


def view_backups(c: Console, d: list) -> None:
    c.print(rows("backups (newest first)", d, [("backup", "backup"), ("agents", lambda r: ", ".join(r["agents"]))], width=100))


def view_restore(c: Console, d: dict) -> None:
    c.print(rows(f"restore {d.get('backup')}{' (DRY RUN)' if d.get('dry_run') else ''}", d.get("files") or [], [
        ("agent", "agent_id"), ("file", "file"), ("action", "action"), ("size", "size"),
        ("backup sha256", lambda r: r["backup_sha256"][:16]), ("current sha256", lambda r: (r.get("current_sha256") or "-")[:16]),
    ]))


def view_stream(c: Console, d: dict) -> None:
    p = d.get("packet") or {}
    sse = d.get("sse") or {}
    latest = p.get("decision_latest") or {}
    c.print(kv(f"room {d.get('room_id')}: {'ok' if d.get('ok') else 'PROBLEM'}", {
        "stream packet": yes(p.get("ok")) if p.get("ok") else Text(f"HTTP {p.get('status')} {p.get('error')}", style="bold red"),
        "packet age": f"{(p.get('age_ms') or 0) / 1000:.1f}s" if p.get("age_ms") is not None else "-",
        "latest decision": f"{latest.get('action')} {latest.get('symbol')} #{latest.get('cycle_number')} at {latest.get('timestamp')}" if latest else "-",
        "decision age": f"{p['decision_age_ms'] / 1000:.0f}s ({p.get('label')})" if p.get("decision_age_ms") is not None else p.get("label", "-"),
        "data readiness": p.get("data_readiness"),
        "sse": f"HTTP {sse.get('status')} {cell(sse.get('content_type'))}, first event {cell(sse.get('first_event'))} in {sse.get('elapsed_ms')} ms",
        "replay": cell(d.get("replay")),
    }))


def view_freshness(c: Console, d: dict) -> None:
    c.print(rows(f"live data freshness: {'OK' if d.get('ok') else 'NOT OK'}", d.get("checks") or [], [
        ("check", "label"), ("required", "required"), ("ok", lambda r: yes(r.get("ok"))),
        ("age s", "age_sec"), ("max s", "max_age_sec"), ("source", "age_source"), ("error", "error"), ("file", "file"),
    ]))


def view_audit(c: Console, d: dict) -> None:
    c.print(rows("control audit (newest first)", list(reversed(d.get("records") or [])), [
        ("time", "ts"), ("action", "action"), ("holder", "holder"), ("actor", "actor"), ("ip", "ip"), ("target", "target"),
        ("result", lambda r: Text(str(r.get("result")), style="green" if r.get("result") in ("ok", "dry_run") else "bold red")),
        ("error", lambda r: r.get("error") or (f"{r['count']} calls: {', '.join(r.get('errors') or {})}" if r.get("count") else None)),
    ]))


def view_rehearsal(c: Console, d: dict) -> None:
    # The steps and their evidence were printed as they ran; this is the summary for the ticket.
    c.print(rows("rehearsal", d.get("steps") or [], [("step", "step"), ("result", "level"), ("check", "title")]))


def view_approval(c: Console, d: dict) -> None:
    a = d.get("approval") or {}
    c.print(kv("waiting for a second admin", {k: a.get(k) for k in ("approval_id", "action", "target", "requested_by", "expires_at")}))


def view_approvals(c: Console, d: dict) -> None:
    c.print(rows(f"pending admin requests (two-person rule {'on' if d.get('two_person') else 'off'}, window {d.get('window_s')} s)",
                 d.get("pending") or [], [
                     ("id", "approval_id"), ("action", "action"), ("target", "target"), ("requested by", "requested_by"),
                     ("requested", "requested_at"), ("expires", "expires_at"),
                 ]))


def view_report(c: Console, d: dict) -> None:
    c.print(Text(f"report for {d['day']}", style="bold"))
    c.print(rows("agents", [{"trader_id": k, **v} for k, v in d["agents"].items()], [
        ("trader", "trader_id"), ("decisions", "decisions"),
        ("llm/heur/gate", lambda a: "/".join(str(a["by_source"][k]) for k in ("llm", "heuristic", "readiness_gate"))),
        ("ok/warn/err", lambda a: "/".join(str(a["by_readiness"].get(k, 0)) for k in ("OK", "WARN", "ERROR"))),
        ("fills", lambda a: a["fills"]["total"]), ("fees", "fees"), ("realized", "realized_pnl"), ("unrealized", "unrealized_pnl"),
        ("max dd %", "max_drawdown_pct"), ("llm calls/fail", lambda a: f"{a['llm']['calls']}/{a['llm']['failures']}"),
        ("llm p95 ms", lambda a: a["llm"]["latency_ms"]["p95"]),
        ("gate holds (s)", lambda a: f"{a['gate']['forced_holds']} ({a['gate']['held_s']})"),
        ("hold reasons", lambda a: ", ".join(f"{k}:{n}" for k, n in a["gate"]["reasons"].items())),
        ("session gate s", lambda a: a["session_gate"]["held_s"]),
    ]))
    c.print(kv("totals", d["totals"]))
    c.print(kv("gate time (s) by status", d["gate_time_s"]))
    c.print(kv("held by operators", d["runtime_held"]))
    c.print(rows("control actions", d["control_actions"]["records"], [
        ("time", "ts"), ("action", "action"), ("actor", "actor"), ("target", "target"), ("result", "result"), ("error", "error")]))
    c.print(rows("data freshness incidents", d["freshness_incidents"], [
        ("market", "market"), ("from", "start_ts_ms"), ("to", "end_ts_ms"), ("reason", "reason"), ("decisions", "decisions_seen")]))


VIEWS: dict[str, Callable[[Console, Any], None]] = {
    name[len("view_"):]: fn for name, fn in globals().items() if name.startswith("view_") and callable(fn)
}


def render(console: Console, view: str | None, data: Any) -> None:
    VIEWS.get(view or "record", view_record)(console, data)

