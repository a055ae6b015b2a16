"""Health and config: probes for systemd and the web app's feature flags."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import clock
from ..access.connections import open_descriptors
from ..control import read_route
from ..responses import JSONResponse
from ..state_health import state_write_problems


def health_body(ctx) -> dict:
    runtime = ctx.runtime
    build = ctx.extra["observability"].build
    problems = state_write_problems(ctx.svc.memory, ctx.svc.kill_switch, runtime)
    return {
        "ok": True,
        "service": "opentrade-runtime-api",
        "version": build["version"],
        "commit": build["commit"],
        "uptime_s": int(time.monotonic() - ctx.boot_monotonic),
        "ready": ctx.ready,
        "data_mode": ctx.settings.runtime_data_mode,
        "running": runtime.running,
        "paused_reason": runtime.state_reason(),
        "kill_switch_active": ctx.svc.kill_switch.active,
        "last_cycle_started_ms": runtime.last_cycle_started_ms,
        "last_cycle_completed_ms": runtime.last_cycle_completed_ms,
        "in_flight": bool(runtime.in_flight),
        "clock": clock.status(),
        "connections": connection_stats(ctx),
        "cycle_heartbeat": runtime.heartbeat(),
        "state_writes_ok": not problems,
        "state_write_problems": problems,
    }


def connection_stats(ctx) -> dict | None:
    """Open connections against the cap, descriptors against the limit, and what the guard closed."""
    guard = ctx.extra.get("connections")
    if guard is None:
        return None  # served in-process (tests): no guarded server
    budget = ctx.extra["descriptor_budget"]
    return {**guard.stats(), "descriptors_open": open_descriptors(), "descriptors_limit": budget.limit,
            "descriptor_reserve": budget.reserve}


async def get_health(request: Request) -> Response:
    """Liveness plus uptime and the last-cycle heartbeat (unwrapped, as the Node runtime)."""
    return JSONResponse(health_body(request.app.state.ctx))


async def get_ready(request: Request) -> Response:
    """Readiness for probes: 200 once boot has finished and state writes reach the disk, else 503.

    `/health` stays 200 on a full disk (liveness: a restart would not free the disk, and would
    forget a kill switch held in memory only); readiness says the runtime cannot persist."""
    ctx = request.app.state.ctx
    body = health_body(ctx)
    return JSONResponse(body, status_code=200 if ctx.ready and body["state_writes_ok"] else 503)


async def get_config(request: Request) -> Response:
    """Feature flags for the web app (unwrapped)."""
    return JSONResponse({"beta_mode": True, "registration_enabled": False})


def probe_route(path: str, endpoint) -> Route:
    """A public GET answering fresh state every call: served by the stream lane's short way
    (streaming/admission.py), past the cache, exception and router layers."""
    route = read_route(path, endpoint)
    route.probe = True
    return route


routes = [
    probe_route("/health", get_health),
    probe_route("/health/ready", get_ready),
    read_route("/api/config", get_config),
]
