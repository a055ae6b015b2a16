"""`onlytrade-ops report`: one trading day of the show, read from the files the runtime wrote.

Per agent: decisions by source and readiness, fills, fees, realized and unrealized P&L, max
drawdown, LLM calls/failures/latency, forced holds (the readiness gate) with their time and
reasons, and the time the session gate held it and why (`gate-events.jsonl`, written by the
runtime's watcher on every gate change). For the runtime: seconds per gate status, the day's
control actions (control audit), the time the kill switch and pause held everything, and
live-data freshness incidents (decision audit and gate events). Reads only
files, never the API, so it works for any past day and with the runtime stopped.

Days are the decision logs' own day files (`<DECISIONS_DIR>/<agent>/<day>.jsonl`): the Shanghai
date on which a decision was saved (in replay mode, the wall-clock day the replay ran).
"""

from __future__ import annotations

import csv
import io
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

from runtime_api.state.journal import DAY_KEY_RE, read_jsonl
from runtime_api.observability.watch import GATE_EVENTS
from runtime_api.market.calendar import CN, trading_day_of

from .exits import EXIT_OK, EXIT_USAGE, OpsError, Outcome

MAX_LINES = 200_000
SOURCES = {"llm.openai": "llm", "rule.heuristic": "heuristic"}
CSV_COLUMNS = [
    "trader_id", "decisions", "llm", "heuristic", "readiness_gate", "readiness_ok", "readiness_warn", "readiness_error",
    "buys", "sells", "filled_notional", "fees", "realized_pnl", "unrealized_pnl", "start_equity", "end_equity",
    "max_drawdown", "max_drawdown_pct", "llm_calls", "llm_failures", "llm_latency_ms_p50", "llm_latency_ms_p95",
    "gate_holds", "gate_held_s", "session_gate_held_s",
]


def _ts_ms(value: Any) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value:
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return None
    return None


def _r(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def _agents(base: Path) -> list[str]:
    try:
        return sorted(p.name for p in base.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


def available_days(settings) -> list[str]:
    base = settings.resolve(settings.decisions_dir)
    days = {p.stem for agent in _agents(base) for p in (base / agent).glob("*.jsonl") if DAY_KEY_RE.match(p.stem)}
    return sorted(days, reverse=True)


def _drawdown(equities: list[float]) -> tuple[float, float]:
    peak, worst, worst_pct = None, 0.0, 0.0
    for value in equities:
        peak = value if peak is None or value > peak else peak
        if peak and peak - value > worst:
            worst, worst_pct = peak - value, (peak - value) / peak * 100
    return _r(worst), _r(worst_pct, 4)


def _percentile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))])


def agent_day(records: list[dict], audits: list[dict]) -> dict[str, Any]:
    """The per-agent summary of one day's decision records (and their audit lines)."""
    records = sorted(records, key=lambda r: (_ts_ms(r.get("saved_ts_ms")) or 0, r.get("cycle_number") or 0))
    # A decision and its audit line share saved_ts_ms and cycle (cycles restart after a reset).
    key = lambda r: (r.get("saved_ts_ms"), r.get("cycle_number"))  # noqa: E731
    forced = {key(a): a for a in audits if a.get("forced_hold")}
    readiness_of = {key(a): (a.get("data_readiness") or {}) for a in audits}
    by_source = {"llm": 0, "heuristic": 0, "readiness_gate": 0}
    by_readiness = {"OK": 0, "WARN": 0, "ERROR": 0}
    by_action: dict[str, int] = {}
    buys = sells = 0
    notional = fees = realized = 0.0
    llm_calls, latencies = 0, []
    llm_failures: dict[str, int] = {}
    hold_reasons: dict[str, int] = {}
    held_ms, holds = 0, 0
    equities: list[float] = []
    for i, rec in enumerate(records):
        head = (rec.get("decisions") or [{}])[0]
        action = str(head.get("action") or "hold")
        by_action[action] = by_action.get(action, 0) + 1
        cycle = key(rec)
        is_forced = cycle in forced
        source = "readiness_gate" if is_forced else SOURCES.get(str(rec.get("decision_source")), "heuristic")
        by_source[source] += 1
        level = str(readiness_of.get(cycle, {}).get("level") or "unknown")
        by_readiness[level] = by_readiness.get(level, 0) + 1
        if head.get("executed") and action in ("buy", "sell"):
            buys += action == "buy"
            sells += action == "sell"
            notional += float(head.get("filled_notional") or 0)
            fees += float(head.get("fee_paid") or 0)
            realized += float(head.get("realized_pnl") or 0) if action == "sell" else 0.0
        llm = rec.get("llm") or {}
        if llm.get("used") or llm.get("failure_reason"):
            llm_calls += 1
            if isinstance(llm.get("latency_ms"), (int, float)):
                latencies.append(int(llm["latency_ms"]))
        if llm.get("failure_reason"):
            reason = str(llm["failure_reason"]).split(":")[0]
            llm_failures[reason] = llm_failures.get(reason, 0) + 1
        if is_forced:
            holds += 1
            for reason in (forced[cycle].get("data_readiness") or {}).get("reasons") or ["unknown"]:
                hold_reasons[str(reason)] = hold_reasons.get(str(reason), 0) + 1
            if i + 1 < len(records):  # held until the next decision of this agent
                start, end = _ts_ms(rec.get("saved_ts_ms")), _ts_ms(records[i + 1].get("saved_ts_ms"))
                if start is not None and end is not None:
                    held_ms += max(0, end - start)
        balance = (rec.get("account_state") or {}).get("total_balance")
        if isinstance(balance, (int, float)):
            equities.append(float(balance))
    last = records[-1] if records else {}
    drawdown, drawdown_pct = _drawdown(equities)
    return {
        "decisions": len(records),
        "by_source": by_source,
        "by_readiness": by_readiness,
        "by_action": by_action,
        "fills": {"buys": buys, "sells": sells, "total": buys + sells, "filled_notional": _r(notional)},
        "fees": _r(fees),
        "realized_pnl": _r(realized),
        "unrealized_pnl": _r((last.get("account_state") or {}).get("total_unrealized_profit") or 0),
        "start_equity": equities[0] if equities else None,
        "end_equity": equities[-1] if equities else None,
        "max_drawdown": drawdown,
        "max_drawdown_pct": drawdown_pct,
        "llm": {
            "calls": llm_calls, "failures": sum(llm_failures.values()), "failures_by_reason": llm_failures,
            "latency_ms": {"p50": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95),
                           "max": max(latencies) if latencies else None,
                           "mean": _r(statistics.fmean(latencies), 1) if latencies else None},
        },
        "gate": {"forced_holds": holds, "held_s": _r(held_ms / 1000, 1), "reasons": hold_reasons},
        "session_gate": {"held_s": 0.0, "reasons": {}},  # filled from gate-events.jsonl
        "first_decision": records[0].get("timestamp") if records else None,
        "last_decision": last.get("timestamp"),
    }


def _control_actions(path: Path, day: str) -> list[dict]:
    rows = []
    for entry in read_jsonl(path, MAX_LINES):
        ts = _ts_ms(entry.get("ts"))
        if ts is not None and trading_day_of(ts, CN) == day:
            rows.append({k: entry.get(k) for k in ("ts", "action", "actor", "target", "result", "error", "request_id")})
    return rows


def _held_by_control(actions: list[dict], day_end_ms: int) -> dict[str, Any]:
    """Seconds the kill switch and an operator pause held every agent, from the day's accepted actions."""
    spans = {"kill_switch": [], "pause": []}
    open_at: dict[str, int | None] = {"kill_switch": None, "pause": None}
    switches = {
        "agent.runtime.kill_switch.activate": ("kill_switch", True), "agent.runtime.kill_switch.deactivate": ("kill_switch", False),
        "agent.runtime.control.pause": ("pause", True), "agent.runtime.control.resume": ("pause", False),
    }
    for row in actions:
        if row.get("result") != "ok" or row.get("action") not in switches:
            continue
        what, on = switches[row["action"]]
        ts = _ts_ms(row.get("ts")) or 0
        if on and open_at[what] is None:
            open_at[what] = ts
        elif not on and open_at[what] is not None:
            spans[what].append((open_at[what], ts))
            open_at[what] = None
    for what, start in open_at.items():
        if start is not None:
            spans[what].append((start, max(start, day_end_ms)))
    return {f"{what}_s": _r(sum(end - start for start, end in s) / 1000, 1) for what, s in spans.items()} | {
        "still_on_at_end": [what for what, start in open_at.items() if start is not None]}


def _day_bounds_ms(day: str) -> tuple[int, int]:
    start = int(datetime.fromisoformat(f"{day}T00:00:00+08:00").timestamp() * 1000)
    return start, start + 86_400_000


def _gate_spans(path: Path, day: str, now_ms: int) -> list[tuple[int, int, dict]]:
    """(start, end, event) for each gate state in force during `day` (Shanghai), clipped to it."""
    day_start, day_end = _day_bounds_ms(day)
    events = sorted((e for e in read_jsonl(path, MAX_LINES) if isinstance(e.get("ts_ms"), int)), key=lambda e: e["ts_ms"])
    spans = []
    for i, event in enumerate(events):
        start = event["ts_ms"]
        end = events[i + 1]["ts_ms"] if i + 1 < len(events) else min(day_end, now_ms)
        start, end = max(start, day_start), min(end, day_end)
        if end > start:
            spans.append((start, end, event))
    return spans


def _gate_held(spans: list[tuple[int, int, dict]]) -> tuple[dict[str, dict], dict[str, float], list[dict]]:
    """Per agent: seconds the session gate blocked it, by reason; runtime: seconds by status; gate data incidents."""
    per_agent: dict[str, dict] = {}
    by_status: dict[str, float] = {}
    incidents = []
    for start, end, event in spans:
        seconds = (end - start) / 1000
        by_status[event.get("status", "unknown")] = by_status.get(event.get("status", "unknown"), 0.0) + seconds
        reasons = set()
        for agent_id, reason in (event.get("blocked") or {}).items():
            row = per_agent.setdefault(agent_id, {"held_s": 0.0, "reasons": {}})
            row["held_s"] += seconds
            row["reasons"][reason] = _r(row["reasons"].get(reason, 0.0) + seconds, 1)
            reasons.add(reason)
        for reason in sorted(reasons & {"live_file_stale", "live_file_error"}):
            incidents.append({"market": "gate", "start_ts_ms": start, "end_ts_ms": end, "reason": reason,
                              "decisions_seen": 0, "source": "session_gate"})
    for row in per_agent.values():
        row["held_s"] = _r(row["held_s"], 1)
    return per_agent, {k: _r(v, 1) for k, v in by_status.items()}, incidents


def _freshness_incidents(audits: list[dict]) -> list[dict]:
    """Stretches during which the decision audit saw a live frames file stale or failing."""
    incidents: list[dict] = []
    open_by: dict[str, dict] = {}
    for a in sorted(audits, key=lambda a: _ts_ms(a.get("saved_ts_ms")) or 0):
        ts = _ts_ms(a.get("saved_ts_ms"))
        for market, st in (a.get("live_files") or {}).items():
            if not isinstance(st, dict):
                continue
            bad = bool(st.get("stale")) or bool(st.get("last_error"))
            if bad and market not in open_by:
                open_by[market] = {"market": market, "start_ts_ms": ts, "end_ts_ms": None,
                                   "reason": st.get("last_error") or "stale", "decisions_seen": 0}
                incidents.append(open_by[market])
            if bad:
                open_by[market]["decisions_seen"] += 1
            elif market in open_by:
                open_by.pop(market)["end_ts_ms"] = ts
    return incidents


def build(settings, day: str | None = None) -> dict[str, Any]:
    """The report for `day` (default: the newest day with decision logs, else today in Shanghai)."""
    if day is not None and not DAY_KEY_RE.match(day):
        raise OpsError(EXIT_USAGE, f"--day must be YYYY-MM-DD, got {day!r}")
    days = available_days(settings)
    day = day or (days[0] if days else trading_day_of(int(datetime.now().timestamp() * 1000), CN))
    decisions_dir = settings.resolve(settings.decisions_dir)
    audit_dir = settings.resolve(settings.decision_audit_base_dir)
    agents, all_audits = {}, []
    for agent_id in _agents(decisions_dir):
        path = decisions_dir / agent_id / f"{day}.jsonl"
        if not path.is_file():
            continue
        records = read_jsonl(path, MAX_LINES)
        audits = read_jsonl(audit_dir / agent_id / f"{day}.jsonl", MAX_LINES)
        all_audits += audits
        agents[agent_id] = agent_day(records, audits)
    state_dir = settings.resolve(settings.runtime_state_dir)
    actions = _control_actions(state_dir / "control-audit.jsonl", day)
    day_end_ms = _day_bounds_ms(day)[1]
    now_ms = int(datetime.now().timestamp() * 1000)
    gate_by_agent, gate_by_status, gate_incidents = _gate_held(_gate_spans(state_dir / GATE_EVENTS, day, now_ms))
    for agent_id, held in gate_by_agent.items():
        if agent_id in agents:
            agents[agent_id]["session_gate"] = held
    counts: dict[str, int] = {}
    for row in actions:
        counts[str(row.get("result"))] = counts.get(str(row.get("result")), 0) + 1
    return {
        "schema_version": "onlytrade.ops_report.v1",
        "day": day,
        "available_days": days[:30],
        "agents": agents,
        "totals": {
            "decisions": sum(a["decisions"] for a in agents.values()),
            "fills": sum(a["fills"]["total"] for a in agents.values()),
            "fees": _r(sum(a["fees"] for a in agents.values())),
            "realized_pnl": _r(sum(a["realized_pnl"] for a in agents.values())),
            "unrealized_pnl": _r(sum(a["unrealized_pnl"] for a in agents.values())),
            "llm_calls": sum(a["llm"]["calls"] for a in agents.values()),
            "llm_failures": sum(a["llm"]["failures"] for a in agents.values()),
        },
        "runtime_held": _held_by_control(actions, min(day_end_ms, now_ms)),
        "gate_time_s": gate_by_status,  # from gate-events.jsonl: seconds per status (open, held, paused, killed)
        "session_gate": gate_by_agent,  # every running agent the gate held, even one that never decided
        "control_actions": {"count": len(actions), "by_result": counts, "records": actions},
        "freshness_incidents": _freshness_incidents(all_audits) + gate_incidents,
    }


def csv_text(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", *CSV_COLUMNS])
    for agent_id, a in report["agents"].items():
        writer.writerow([report["day"], *[_csv_value(agent_id, a, c) for c in CSV_COLUMNS]])
    return out.getvalue()


def _csv_value(agent_id: str, a: dict, column: str) -> Any:
    flat = {
        "trader_id": agent_id, "decisions": a["decisions"], **a["by_source"],
        "readiness_ok": a["by_readiness"].get("OK", 0), "readiness_warn": a["by_readiness"].get("WARN", 0),
        "readiness_error": a["by_readiness"].get("ERROR", 0), "buys": a["fills"]["buys"], "sells": a["fills"]["sells"],
        "filled_notional": a["fills"]["filled_notional"], "fees": a["fees"], "realized_pnl": a["realized_pnl"],
        "unrealized_pnl": a["unrealized_pnl"], "start_equity": a["start_equity"], "end_equity": a["end_equity"],
        "max_drawdown": a["max_drawdown"], "max_drawdown_pct": a["max_drawdown_pct"], "llm_calls": a["llm"]["calls"],
        "llm_failures": a["llm"]["failures"], "llm_latency_ms_p50": a["llm"]["latency_ms"]["p50"],
        "llm_latency_ms_p95": a["llm"]["latency_ms"]["p95"], "gate_holds": a["gate"]["forced_holds"], "gate_held_s": a["gate"]["held_s"],
        "session_gate_held_s": a["session_gate"]["held_s"],
    }
    value = flat[column]
    return "" if value is None else value


def report(settings, day: str | None = None) -> Outcome:
    data = build(settings, day)
    notes = [] if data["agents"] else [f"no decision logs for {data['day']} (days with logs: {', '.join(data['available_days'][:5]) or 'none'})"]
    return Outcome(data, EXIT_OK, view="report", notes=notes)
