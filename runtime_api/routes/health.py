"""Health and config: probes for systemd and the web app's feature flags."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import clock
from ..access.connections import open_descriptors
from ..access.control_route import read_route
from ..web.responses import JSONResponse, to_json
from ..state.write_health import state_write_problems


_ANSWER_KEY = "health_answer"


def health_body(ctx, problems: list[str]) -> dict:
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
        "clock": clock.status(),
        "connections": connection_stats(ctx),
        "cycle_heartbeat": runtime.heartbeat(),
        "state_writes_ok": not problems,
        "state_write_problems": problems,
    }


class HealthAnswer:
    """The probes' body, encoded again whenever what an operator acts on changes and otherwise at
    most every FIGURES_MAX_AGE_S.

    The key holds readiness, the runtime's state version (pause, agents started or stopped, cycles),
    the kill switch, state-write problems and the replay's controls, so a probe never shows an
    earlier state of those; only the figures that move on their own (uptime, clock, connection
    counts, heartbeat age) can be that old. A flood of probes then costs one build per interval,
    not one per request (the body was most of a probe's cost)."""

    FIGURES_MAX_AGE_S = 0.05

    def __init__(self, ctx):
        self.ctx = ctx
        self._key: tuple | None = None
        self._built_at = 0.0
        self._answer: tuple[bool, bytes] = (False, b"")

    def get(self) -> tuple[bool, bytes]:
        """(ready: booted and state writes reach the disk, the JSON body)."""
        ctx, runtime = self.ctx, self.ctx.runtime
        problems = state_write_problems(ctx.svc.memory, ctx.svc.kill_switch, runtime)
        key = (ctx.ready, runtime.version, ctx.svc.kill_switch.active, bool(runtime.in_flight),
               runtime.last_cycle_started_ms, runtime.last_cycle_completed_ms, ctx.replay_state(), *problems)
        now = time.monotonic()
        if key != self._key or now - self._built_at >= self.FIGURES_MAX_AGE_S:
            self._answer = (ctx.ready and not problems, to_json(health_body(ctx, problems)))
            self._key, self._built_at = key, now
        return self._answer


def connection_stats(ctx) -> dict | None:
    """Open connections against the cap, descriptors against the limit, and what the guard closed."""
    guard = ctx.extra.get("connections")
    if guard is None:
        return None  # served in-process (tests): no guarded server
    budget = ctx.extra["descriptor_budget"]
    return {**guard.stats(), "descriptors_open": open_descriptors(), "descriptors_limit": budget.limit,
            "descriptor_reserve": budget.reserve}


def _answer(ctx) -> tuple[bool, bytes]:
    found = ctx.extra.get(_ANSWER_KEY)
    if found is None:
        found = ctx.extra[_ANSWER_KEY] = HealthAnswer(ctx)
    return found.get()


def health_probe(ctx) -> tuple[int, bytes]:
    """Liveness: 200 whenever the process answers (a full disk included: a restart would not free
    it, and would forget a kill switch held in memory only)."""
    return 200, _answer(ctx)[1]


def ready_probe(ctx) -> tuple[int, bytes]:
    """Readiness: 200 once boot has finished and state writes reach the disk, else 503."""
    ready, body = _answer(ctx)
    return (200 if ready else 503), body


async def get_health(request: Request) -> Response:
    """Liveness plus uptime and the last-cycle heartbeat (unwrapped, as the Node runtime)."""
    status, body = health_probe(request.app.state.ctx)
    return JSONResponse(body, status_code=status)


async def get_ready(request: Request) -> Response:
    """Readiness for probes: 200 once boot has finished and state writes reach the disk, else 503."""
    status, body = ready_probe(request.app.state.ctx)
    return JSONResponse(body, status_code=status)


async def get_config(request: Request) -> Response:
    """Feature flags for the web app (unwrapped)."""
    return JSONResponse({"beta_mode": True, "registration_enabled": False})


def probe_route(path: str, endpoint, answer) -> Route:
    """A public GET never kept by any cache (no-store: state as of this call, see HealthAnswer):
    the stream lane (streaming/admission.py) sends `answer(ctx)` past the cache, exception and
    router layers; `endpoint` answers the same through the router (HEAD)."""
    route = read_route(path, endpoint)
    route.probe_answer = answer
    return route


routes = [
    probe_route("/health", get_health, health_probe),
    probe_route("/health/ready", get_ready, ready_probe),
    read_route("/api/config", get_config),
]
