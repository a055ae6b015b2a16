"""`health-restart-probe`: is the runtime answering, and is anything listening on its port?

Run every minute by `onlytrade-health-probe.timer`; a non-zero exit makes systemd try-restart the
runtime. Unhealthy (exit 1) means /health did not answer 200 `ok:true` in time; or its cycle
heartbeat is stale (cycles are due but none started for HEARTBEAT_FACTOR times the cadence, at
least HEARTBEAT_MIN_MS: a wedged scheduler); or, for a loopback API base, not exactly one socket
listens on the port (none: nothing serves; two or more: a second server shares the port, and
requests land on either). Listeners are counted from /proc/net/tcp{,6}, falling back to `ss`; the
runtime's PID comes from /proc/locks (who holds the instance lock), read-only.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from .client import Client, api_port, is_local
from .exits import EXIT_FAILED, EXIT_OK, OpsError, Outcome
from .local import instance_lock_path, lock_holders

PROBE_TIMEOUT_S = 5.0
HEARTBEAT_FACTOR = 3
HEARTBEAT_MIN_MS = 120_000
TCP_LISTEN = "0A"


def proc_listeners(port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> int | None:
    """Listening TCP sockets on `port` from the kernel tables; None when none of them can be read."""
    count, readable = 0, False
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        count += count_listeners(lines, port)
    return count if readable else None


def count_listeners(lines: list[str], port: int) -> int:
    """Rows of a /proc/net/tcp table in state LISTEN whose local port is `port`."""
    count = 0
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or parts[3] != TCP_LISTEN:
            continue
        _, _, hex_port = parts[1].rpartition(":")
        try:
            if int(hex_port, 16) == port:
                count += 1
        except ValueError:
            continue
    return count


def ss_listeners(port: int) -> int | None:
    ss = shutil.which("ss")
    if not ss:
        return None
    try:
        out = subprocess.run([ss, "-Hltn"], capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    count = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3].rsplit(":", 1)[-1] == str(port):
            count += 1
    return count


def listeners(port: int) -> tuple[int | None, str | None]:
    found = proc_listeners(port)
    if found is not None:
        return found, "proc"
    found = ss_listeners(port)
    return (found, "ss") if found is not None else (None, None)


def heartbeat_problem(health: dict, *, min_ms: int = HEARTBEAT_MIN_MS) -> str | None:
    """Why the cycle heartbeat in a /health body is stale, or None (also when no cycle is due:
    paused, kill switch, market closed, replay paused; and for a runtime too old to report one)."""
    beat = health.get("cycle_heartbeat")
    if not isinstance(beat, dict) or not beat.get("expected"):
        return None
    every, age = int(beat.get("expected_every_ms") or 0), int(beat.get("age_ms") or 0)
    limit = max(min_ms, HEARTBEAT_FACTOR * every)
    if age <= limit:
        return None
    what = "a decision cycle has been running" if health.get("in_flight") else "no decision cycle started"
    return f"{what} for {age // 1000}s although one is due every {every // 1000}s: the scheduler looks wedged"


def probe(client: Client, settings=None) -> Outcome:
    """The verdict: exit 0 healthy, 1 unhealthy (never 3: an unreachable runtime is the unhealthy case)."""
    out: dict[str, Any] = {"health_ok": False, "api_base": client.base, "api_port": api_port(client.base)}
    try:
        reply = client.get("/health")
        out["health_ok"] = reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("ok") is True
        out["health"] = reply.body if isinstance(reply.body, dict) else {"status": reply.status}
    except OpsError as exc:
        out["error"] = exc.message
    local = is_local(client.base)
    out["listener_count"], out["listener_source"] = listeners(out["api_port"]) if local else (None, None)
    out["runtime_pids"] = lock_holders(instance_lock_path(settings)) if settings is not None else None
    notes = []
    if not out["health_ok"]:
        notes.append("unhealthy: " + (out.get("error") or "/health did not answer ok"))
    stale = heartbeat_problem(out.get("health") or {}) if out["health_ok"] else None
    out["heartbeat_ok"] = stale is None
    if stale:
        notes.append("unhealthy: " + stale)
    count = out["listener_count"]
    if local and count == 0:
        notes.append(f"unhealthy: nothing listens on port {out['api_port']}")
    elif local and count is not None and count > 1:
        notes.append(f"unhealthy: {count} sockets listen on port {out['api_port']} (expected 1: a second server?)")
    healthy = out["health_ok"] and stale is None and not (local and count is not None and count != 1)
    out["healthy"] = healthy
    return Outcome(out, EXIT_OK if healthy else EXIT_FAILED, view="probe", notes=notes)
