"""The app factory: `uvicorn runtime_api.app:create_app --factory` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from .agent_runtime import AgentRuntime
from .context import AppContext
from .control import ControlAudit
from .errors import ApiError
from .observability.http_metrics import ObservabilityMiddleware
from .observability.observer import Observability
from .responses import fail
from .routes import all_routes
from .routes.rooms import install_viewer_streams
from .services import build_services
from .settings import Settings

log = logging.getLogger("onlytrade.app")

SHUTDOWN_DRAIN_S = 10.0
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "bad_request"}


async def on_api_error(request: Request, exc: ApiError) -> Response:
    return fail(exc.status, exc.code, exc.message)


async def on_http_error(request: Request, exc: HTTPException) -> Response:
    return fail(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), headers=getattr(exc, "headers", None))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return fail(500, "internal_error", "unexpected server error; see server log")


def build_context(settings: Settings) -> AppContext:
    svc = build_services(settings)
    ctx = AppContext(settings=settings, svc=svc, runtime=AgentRuntime(svc))
    ctx.control_audit = ControlAudit(settings.resolve(settings.runtime_state_dir) / "control-audit.jsonl")
    install_viewer_streams(ctx)  # ctx.extra["viewer_streams"]; listens to every decision
    Observability(ctx).attach()  # ctx.extra["observability"]: metrics, alerts, the Gate log line
    if ctx.runtime.paused_reason:
        log.warning("runtime paused (%s) since before this boot: no cycles until an explicit resume", ctx.runtime.paused_reason)
    if svc.kill_switch.active:
        log.warning("kill switch active at boot (sources: %s): no cycles until it is cleared", ",".join(svc.kill_switch.sources()))
    return ctx


def create_app(settings: Settings | None = None) -> Starlette:
    """Build every store and service from settings and assemble the routes."""
    settings = settings or Settings.from_env()
    ctx = build_context(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        ctx.runtime.refresh_gate()
        loop_task = asyncio.create_task(ctx.runtime.run_forever(), name="agent-runtime")
        monitor_task = asyncio.create_task(ctx.loop_monitor.run(), name="loop-monitor")
        rescan_task = asyncio.create_task(ctx.runtime.maintain(), name="manifest-rescan")
        observability = ctx.extra["observability"]
        await observability.start()
        ctx.ready = True
        try:
            yield
        finally:
            ctx.ready = False
            await ctx.extra["viewer_streams"].close()
            await ctx.runtime.drain(SHUTDOWN_DRAIN_S)
            for task in (loop_task, monitor_task, rescan_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if ctx.runtime.llm is not None:
                await ctx.runtime.llm.aclose()
            await observability.stop()

    app = Starlette(
        routes=all_routes(),
        exception_handlers={ApiError: on_api_error, HTTPException: on_http_error, Exception: on_unexpected},
        lifespan=lifespan,
        middleware=[Middleware(ObservabilityMiddleware, instruments=ctx.extra["observability"].instruments)],
    )
    app.state.ctx = ctx
    return app
