"""Market-session gate: which running agents may decide now, and why the others may not.

Pure: it reads the session calendar and live-file status and returns a snapshot; the runtime
applies it. Disabled in replay mode (every running agent is active). Fixes W13: the
fresh-data requirement follows AGENT_SESSION_GUARD_REQUIRE_FRESH_LIVE_DATA.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .calendar import market_of_exchange, session_state


def live_fresh_ok(status: Mapping[str, Any] | None) -> bool:
    return bool(status) and not status.get("last_error") and not status.get("stale") and (status.get("frame_count") or 0) > 0


def _live_file_view(status: Mapping[str, Any] | None) -> dict | None:
    if not status:
        return None
    return {k: status.get(k) for k in ("stale", "last_load_ts_ms", "last_mtime_ms", "last_error", "frame_count", "latest_ts_ms")} | {
        "symbols_1m_count": len(status.get("symbols_1m") or [])
    }


def evaluate(
    *,
    enabled: bool,
    require_fresh: bool,
    check_ms: int,
    now_ms: int,
    running: Mapping[str, Mapping[str, Any]],
    live_status: Mapping[str, Mapping[str, Any] | None],
) -> dict:
    """Decide the active agents. `running` maps agent id -> manifest; `live_status` maps market -> provider status."""
    if not enabled:
        return {"enabled": False, "active_trader_ids": sorted(running), "running_trader_ids": sorted(running)}
    markets: dict[str, dict] = {}
    for market in ("CN-A", "US"):
        status = live_status.get(market)
        markets[market] = {
            "session": session_state(market, now_ms),
            "live_fresh_ok": live_fresh_ok(status),
            "live_file": _live_file_view(status),
        }
    active = []
    blocked: dict[str, str] = {}
    for agent_id, manifest in sorted(running.items()):
        m = markets[market_of_exchange(str(manifest.get("exchange_id") or ""))]
        if not m["session"]["is_open"]:
            blocked[agent_id] = m["session"].get("reason") or "market_closed"
        elif require_fresh and not m["live_fresh_ok"]:
            blocked[agent_id] = "live_file_error" if (m["live_file"] or {}).get("last_error") else "live_file_stale"
        else:
            active.append(agent_id)
    return {
        "enabled": True,
        "check_ms": check_ms,
        "require_fresh_live_data": require_fresh,
        "last_check_ms": now_ms,
        "running_trader_ids": sorted(running),
        "active_trader_ids": active,
        "blocked": blocked,
        "markets": markets,
    }


def session_gate_level(*, live_mode: bool, market: str, now_ms: int, status: Mapping[str, Any] | None) -> dict:
    """The per-decision `session_gate` block (OK / WARN / ERROR with reasons)."""
    if not live_mode:
        return {"level": "OK", "reasons": [], "market": market, "ts_ms": now_ms}
    reasons = []
    level = "OK"
    if not status or status.get("last_error"):
        level, reasons = "ERROR", ["live_file_error"]
    elif status.get("stale"):
        level, reasons = "WARN", ["live_file_stale"]
    if not session_state(market, now_ms)["is_open"]:
        reasons.append("market_closed")
        level = "ERROR" if level == "ERROR" else "WARN"
    return {"level": level, "reasons": reasons, "market": market, "ts_ms": now_ms}
