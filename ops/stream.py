"""`stream-monitor <room> [limit]`: what a viewer of the room gets, and how fresh it is."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from .client import Client
from .control import check_agent_id
from .exits import EXIT_FAILED, EXIT_OK, Outcome

FRESH_MS = 60_000  # a decision this recent: fresh
WARM_MS = 300_000  # up to this: warm; older: stale (expected outside trading hours)
SSE_PROBE_S = 5.0


def freshness_label(age_ms: int | None) -> str:
    if age_ms is None:
        return "none"
    return "fresh" if age_ms <= FRESH_MS else ("warm" if age_ms <= WARM_MS else "stale")


def _ts_ms(value: Any) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip():
        try:
            return int(datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return None
    return None


def _decision_brief(record: dict) -> dict | None:
    if not record:
        return None
    first = (record.get("decisions") or [{}])[0] or {}
    return {"timestamp": record.get("timestamp"), "cycle_number": record.get("cycle_number"),
            "action": first.get("action"), "symbol": first.get("symbol"), "source": record.get("decision_source")}


def monitor(client: Client, room: str, limit: int = 5, *, sse_seconds: float = SSE_PROBE_S) -> Outcome:
    """GET the room's stream packet and the replay status, probe its SSE stream; exit 1 if either fails."""
    room = check_agent_id(room)
    limit = max(1, min(20, limit))
    now = int(time.time() * 1000)
    out: dict[str, Any] = {"room_id": room, "ts_ms": now}
    notes = []

    reply = client.get(f"/api/rooms/{room}/stream-packet", decision_limit=limit)
    packet_ok = reply.ok
    if packet_ok:
        packet = reply.data or {}
        server_clock = packet.get("clock") or {}
        if server_clock.get("simulated") and isinstance(server_clock.get("now_ms"), int):
            now = server_clock["now_ms"]  # a rehearsal: ages on the runtime's simulated clock, not ours
        decision = packet.get("decision_latest") or {}
        packet_age = max(0, now - _ts_ms(packet.get("ts_ms"))) if _ts_ms(packet.get("ts_ms")) else None
        decision_ts = _ts_ms(decision.get("timestamp"))
        decision_age = max(0, now - decision_ts) if decision_ts else None
        out["packet"] = {
            "ok": True,
            "age_ms": packet_age,
            "trader": packet.get("trader"),
            "decisions": len(packet.get("decisions_latest") or []),
            "decision_latest": _decision_brief(decision),
            "decision_age_ms": decision_age,
            "label": freshness_label(decision_age),
            "data_readiness": ((packet.get("room_context") or {}).get("data_readiness") or {}).get("level"),
        }
    else:
        out["packet"] = {"ok": False, "status": reply.status, "error": reply.error}
        if reply.status == 404 and reply.error == "not_found":
            notes.append("this runtime has no /api/rooms/<room>/stream-packet route yet")
        else:
            notes.append(f"stream packet: {client.describe(reply)}")

    replay = client.get("/api/replay/runtime/status")
    out["replay"] = {k: (replay.data or {}).get(k) for k in ("data_mode", "running", "cursor_index", "trading_day", "speed")} if replay.ok else {"error": replay.error}

    sse = client.sse_probe(f"/api/rooms/{room}/events", {"decision_limit": limit}, seconds=sse_seconds)
    sse_ok = sse["status"] == 200 and (sse["content_type"] or "").startswith("text/event-stream")
    out["sse"] = {**sse, "ok": sse_ok}
    if not sse_ok:
        notes.append(f"SSE /api/rooms/{room}/events: status {sse['status']}, {sse['error'] or sse['content_type']}")
    elif sse["first_event"] != "stream_packet":
        notes.append(f"SSE answered but sent no stream_packet within {sse_seconds:g} s")
    ok = packet_ok and sse_ok
    out["ok"] = ok
    return Outcome(out, EXIT_OK if ok else EXIT_FAILED, view="stream", notes=notes)
