"""Health and config: probes for systemd and the web app's feature flags."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from ..control import read_route
from ..responses import JSONResponse


def health_body(ctx) -> dict:
    runtime = ctx.runtime
    build = ctx.extra["observability"].build
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
    }


async def get_health(request: Request) -> Response:
    """Liveness plus uptime and the last-cycle heartbeat (unwrapped, as the Node runtime)."""
    return JSONResponse(health_body(request.app.state.ctx))


async def get_ready(request: Request) -> Response:
    """Readiness for probes: 200 once boot has finished, 503 before."""
    ctx = request.app.state.ctx
    body = health_body(ctx)
    return JSONResponse(body, status_code=200 if ctx.ready else 503)


async def get_config(request: Request) -> Response:
    """Feature flags for the web app (unwrapped)."""
    return JSONResponse({"beta_mode": True, "registration_enabled": False})


routes = [
    read_route("/health", get_health),
    read_route("/health/ready", get_ready),
    read_route("/api/config", get_config),
]
