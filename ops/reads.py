"""Read-only commands: health, status, preflight, agents, decisions, memory (public GETs, no token)."""

from __future__ import annotations

from .client import Client
from .exits import EXIT_FAILED, EXIT_OK, Outcome


def health(client: Client) -> Outcome:
    """GET /health: exit 0 when it answers 200 with ok true."""
    reply = client.get("/health")
    ok = reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("ok") is True
    return Outcome(reply.body, EXIT_OK if ok else EXIT_FAILED, view="health",
                   notes=[] if ok else [f"/health answered HTTP {reply.status}"])


def status(client: Client) -> Outcome:
    """GET /health, /api/agent/runtime/status and /api/replay/runtime/status."""
    health_reply = client.get("/health")
    runtime = client.get_data("/api/agent/runtime/status", "runtime status")
    replay = client.get_data("/api/replay/runtime/status", "replay status")
    healthy = health_reply.status == 200 and isinstance(health_reply.body, dict) and health_reply.body.get("ok") is True
    return Outcome({"health": health_reply.body, "runtime": runtime, "replay": replay},
                   EXIT_OK if healthy else EXIT_FAILED, view="status")


def live_preflight(client: Client) -> Outcome:
    """GET /api/ops/live-preflight: exit 1 unless `ok` (no check at FAIL)."""
    data = client.get_data("/api/ops/live-preflight", "live preflight")
    ok = bool(data.get("ok"))
    failing = [name for name, c in (data.get("checks") or {}).items() if isinstance(c, dict) and c.get("level") == "FAIL"]
    notes = [] if ok else [f"preflight not ok: FAIL {', '.join(failing) or '(see checks)'}"]
    return Outcome(data, EXIT_OK if ok else EXIT_FAILED, view="preflight", notes=notes)


def agents_available(client: Client) -> Outcome:
    return Outcome(client.get_data("/api/agents/available", "agents available"), view="agents")


def agents_registered(client: Client) -> Outcome:
    return Outcome(client.get_data("/api/agents/registered", "agents registered"), view="agents")


def decisions(client: Client, trader: str | None = None, limit: int = 10) -> Outcome:
    """GET /api/decisions/latest (every trader's in-memory decisions, or one trader's incl. today's log)."""
    data = client.get_data("/api/decisions/latest", "decisions", trader_id=trader, limit=limit)
    return Outcome(data, view="decisions")


def memory(client: Client, trader: str | None = None) -> Outcome:
    """GET /api/agent/memory: one snapshot, or every registered agent's."""
    data = client.get_data("/api/agent/memory", "memory", trader_id=trader)
    return Outcome(data, view="memory")


def audit(client: Client, limit: int = 20) -> Outcome:
    """GET /api/ops/audit (token required): the newest control-audit records."""
    reply = client.request("GET", "/api/ops/audit", params={"limit": limit}, control=True)
    return Outcome(client.expect(reply, "control audit"), view="audit")
