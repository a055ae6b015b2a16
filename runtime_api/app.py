"""The app factory: `uvicorn runtime_api.app:create_app --factory` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from .access.gate import AccessConfigError, build_access
from .decision.agent_runtime import AgentRuntime
from .audience import install_audience
from .web.cache_policies import RUNTIME_POLICIES
from .context import AppContext
from .access.control_route import ControlAudit
from .errors import ApiError
from .web.http_cache import HttpCache
from .web.read_caches import schedule_of
from .observability.http_metrics import ObservabilityMiddleware
from .observability.observer import Observability
from .web.responses import fail
from .routes import all_routes
from .routes.rooms import install_viewer_streams
from .services import BootError, build_services
from .streaming.admission import StreamLane
from .settings import Settings
from .state.housekeeping import prune_backups, remove_stale_temp_files, state_dirs

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


def warm_calendars() -> None:
    from .market.calendar import session_state

    for market in ("CN-A", "US"):
        session_state(market, int(time.time() * 1000))


def build_context(settings: Settings) -> AppContext:
    # Housekeeping before anything writes: temp files of killed writers, backups past retention.
    remove_stale_temp_files(state_dirs(settings))
    prune_backups(settings.resolve(settings.backups_dir), keep_last=settings.backups_keep_last,
                  max_age_days=settings.backups_max_age_days)
    svc = build_services(settings)
    ctx = AppContext(settings=settings, svc=svc, runtime=AgentRuntime(svc))
    ctx.control_audit = ControlAudit(settings.resolve(settings.runtime_state_dir) / "control-audit.jsonl")
    try:
        ctx.access = build_access(settings, limiter=ctx.auth_failures)
    except AccessConfigError as exc:
        raise BootError(str(exc)) from None
    install_viewer_streams(ctx)  # ctx.extra["viewer_streams"]; listens to every decision
    install_audience(ctx)  # ctx.extra["audience"]: chat, narration, bets, speech
    ctx.runtime.llm_exchanges.prune()  # LLM_RECORDINGS_RETENTION_DAYS
    Observability(ctx).attach()  # ctx.extra["observability"]: metrics, alerts, the Gate log line
    if ctx.runtime.paused_reason:
        log.warning("runtime paused (%s) since before this boot: no cycles until an explicit resume", ctx.runtime.paused_reason)
    if svc.kill_switch.active:
        log.warning("kill switch active at boot (sources: %s): no cycles until it is cleared", ",".join(svc.kill_switch.sources()))
    return ctx


class RuntimeApp(Starlette):
    """Starlette with the `front` layers outside its server-error layer, which it otherwise puts
    outermost: a read the cache answers at once then passes no layer and no send wrapper more than
    it needs (a tenth of a kept answer's cost). A route's unexpected error still becomes the app's
    JSON 500 inside them, so it is measured, tagged with its request id and never cached."""

    def __init__(self, *args, front: list[Middleware], **kwargs):
        self.front = front
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self):
        app = super().build_middleware_stack()
        for cls, args, kwargs in reversed(self.front):
            app = cls(app, *args, **kwargs)
        return app


def web_dist(settings: Settings) -> Path | None:
    """The built front end to serve (ONLYTRADE_WEB_DIST), or None; a folder without index.html stops boot."""
    if not settings.onlytrade_web_dist:
        return None
    dist = settings.resolve(settings.onlytrade_web_dist)
    if not (dist / "index.html").is_file():
        raise BootError(f"ONLYTRADE_WEB_DIST: no index.html in {dist}")
    return dist


def create_app(settings: Settings | None = None) -> Starlette:
    """Build every store and service from settings and assemble the routes."""
    settings = settings or Settings.from_env()
    ctx = build_context(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        ctx.runtime.refresh_gate()
        # The holiday calendars are imported on first use (~0.5 s of import under the GIL): do it
        # now, not inside the first viewer's packet build, where it stalls every open connection.
        await anyio.to_thread.run_sync(warm_calendars)
        loop_task = asyncio.create_task(ctx.runtime.run_forever(), name="agent-runtime")
        monitor_task = asyncio.create_task(ctx.loop_monitor.run(), name="loop-monitor")
        rescan_task = asyncio.create_task(ctx.runtime.maintain(), name="manifest-rescan")
        watch = settings.live_mode and settings.live_file_watch
        watch_task = asyncio.create_task(ctx.runtime.watch_live_files(), name="live-file-watch") if watch else None
        audit_task = asyncio.create_task(ctx.control_audit.run_flusher(), name="audit-flush")
        audience_tasks = ctx.extra["audience"].tasks()
        persist_task = asyncio.create_task(ctx.runtime.retry_persistence(), name="persist-retry")
        freshness_task = asyncio.create_task(schedule_of(ctx).run(), name="freshness-schedule")
        bus = ctx.extra.get("viewer_bus")
        bus_task = asyncio.create_task(bus.run(), name="viewer-bus") if bus else None
        observability = ctx.extra["observability"]
        await observability.start()
        ctx.ready = True
        try:
            yield
        finally:
            ctx.ready = False
            await ctx.extra["viewer_streams"].close()
            await ctx.runtime.drain(SHUTDOWN_DRAIN_S)
            await ctx.runtime.retry_unpersisted_state()  # a last try for a kill switch held in memory only
            if not ctx.svc.kill_switch.persisted:
                log.error("stopping with the kill switch ON IN MEMORY ONLY: the next boot will not have it; "
                          "touch %s before starting again", ctx.svc.kill_switch.flag_file)
            if ctx.runtime.watcher is not None:
                ctx.runtime.watcher.stop()
            for task in (loop_task, monitor_task, rescan_task, audit_task, persist_task, *audience_tasks,
                         watch_task, freshness_task, bus_task):
                if task is None:
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await ctx.control_audit.flush(all_minutes=True)
            if bus:
                await bus.close()
            if ctx.runtime.llm is not None:
                await ctx.runtime.llm.aclose()
            await ctx.extra["audience"].aclose()
            await observability.stop()

    routes = all_routes(web_dist(settings))
    instruments = ctx.extra["observability"].instruments
    app = RuntimeApp(
        routes=routes,
        exception_handlers={ApiError: on_api_error, HTTPException: on_http_error, Exception: on_unexpected},
        lifespan=lifespan,
        # Outermost first: streams take the short way to their endpoint (streaming.admission; the
        # server's HTTP protocol paces their openings); every request is measured, 304s and kept
        # answers included (the metrics layer sends what the cache can answer at once).
        front=[Middleware(StreamLane, routes=routes, on_api_error=on_api_error,
                          wrap=lambda inner: ObservabilityMiddleware(inner, instruments)),
               Middleware(ObservabilityMiddleware, instruments=instruments),
               Middleware(HttpCache, policies=RUNTIME_POLICIES, boot_tag=str(ctx.svc.boot_ms), found_in=ctx.extra)],
    )
    app.state.ctx = ctx
    if settings.viewer_bus_url:  # VIEWER_BUS_URL: publish what viewers see for onlytrade-edge
        from .viewer_bus.publisher import BusPublisher

        ctx.extra["viewer_bus"] = BusPublisher(ctx, app, settings.viewer_bus_url)
        ctx.extra["viewer_bus"].install(ctx.extra["viewer_streams"].hub)
    return app
