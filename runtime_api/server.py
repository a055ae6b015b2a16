"""`onlytrade-runtime`: validate settings, take the single-instance lock, serve with uvicorn."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from filelock import FileLock, Timeout

from .observability.heap import HeapPolicy
from .settings import Settings, SettingsError, is_loopback

EXIT_OK = 0
EXIT_BAD_SETTINGS = 2
EXIT_BOOT_FAILED = 3
EXIT_ALREADY_RUNNING = 4
HEAP_SETTLE_S = 1.0

log = logging.getLogger("onlytrade.boot")


def _die(code: int, message: str) -> int:
    print(f"onlytrade-runtime: {message}", file=sys.stderr, flush=True)
    return code


def run(environ=None) -> int:
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        return _die(EXIT_BAD_SETTINGS, f"invalid setting {exc}")
    from .observability import logs

    logs.configure(settings)

    from .access.gate import weak_token_report

    weak = weak_token_report(settings)
    if weak and not is_loopback(settings.host):
        return _die(EXIT_BAD_SETTINGS, f"refusing to bind {settings.host} with a weak control token: {'; '.join(weak)} "
                                       "(use at least 24 random characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    for problem in weak:
        log.warning("weak control token on a loopback bind (refused on any other): %s", problem)

    state_dir = settings.resolve(settings.runtime_state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    instance_lock = FileLock(str(state_dir / "runtime.instance.lock"), timeout=0)
    try:
        instance_lock.acquire()
    except Timeout:
        return _die(EXIT_ALREADY_RUNNING, f"another runtime already holds {settings.runtime_state_dir}/runtime.instance.lock; refusing to start a second instance")

    from .app import create_app
    from .services import BootError

    try:
        app = create_app(settings)
    except BootError as exc:
        return _die(EXIT_BOOT_FAILED, f"boot failed: {exc}")

    if not is_loopback(settings.host) and not settings.control_token_configured:
        log.warning("binding %s without CONTROL_API_TOKEN: every control route answers 503 control_token_not_configured", settings.host)
    log.info(
        "onlytrade-runtime mode=%s strict=%s llm=%s control_api_token=%s listen=%s:%s",
        settings.runtime_data_mode, settings.strict_live_mode, "configured" if settings.llm_configured else "heuristic",
        "configured" if settings.control_token_configured else "not-configured", settings.host, settings.port,
    )
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from .access.connections import ConnectionGuard
    from .streaming.admission import Door, paced_protocol, stream_tails

    budget = app.state.ctx.extra["descriptor_budget"]
    guard = app.state.ctx.extra["connections"] = ConnectionGuard.from_settings(settings, budget)
    door = app.state.ctx.extra["stream_door"] = Door()  # stream openings: one per loop turn
    protocol = guard.protocol(paced_protocol(AutoHTTPProtocol, door, stream_tails(app.routes)))
    log.info("descriptors: limit=%d reserve=%d connections<=%d room_viewers<=%d market_viewers<=%d; "
             "header timeout %gs, body timeout %gs, unsent bound %d bytes for %gs",
             budget.limit, budget.reserve, budget.connections, budget.room_viewers, budget.market_viewers,
             settings.http_header_timeout_s, settings.http_body_timeout_s, settings.http_send_buffer_bytes,
             settings.http_send_timeout_s)
    if budget.limit < 4096:
        log.warning("only %d descriptors (RLIMIT_NOFILE): raise LimitNOFILE in the systemd unit for a larger audience", budget.limit)

    # uvicorn drains (lifespan shutdown waits for the in-flight cycle), then re-raises the signal
    # it caught; this handler turns that into a clean exit 0 for systemd.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_OK))
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False,
        timeout_graceful_shutdown=15, lifespan="on", http=protocol, log_config=logs.uvicorn_log_config(settings),
        # uvicorn rewrites the ASGI client from X-Forwarded-For only for these peers, as the
        # control gate does (access.client_address); its own default would trust 127.0.0.1.
        proxy_headers=bool(settings.forwarded_allow_ips), forwarded_allow_ips=settings.forwarded_allow_ips or "",
    )
    heap = app.state.ctx.extra["heap"] = HeapPolicy(thaw_every_s=settings.gc_thaw_hours * 3600)
    server = _graceful_server(config, on_exit=app.state.ctx.extra["viewer_streams"].end_streams_soon, heap=heap)
    try:
        server.run()
    except KeyboardInterrupt:  # the re-raised SIGINT after a graceful stop, as uvicorn.run treats it
        pass
    finally:
        instance_lock.release()
    if not server.started:
        return EXIT_BOOT_FAILED  # uvicorn has logged why (e.g. the port is taken)
    return EXIT_OK


def _graceful_server(config, *, on_exit, heap):
    """uvicorn's server, ending open SSE streams (`event: bye`) as soon as a shutdown signal arrives.

    Viewers never hang up on their own, so without this the graceful drain would wait its whole
    timeout on them; ended streams let it finish at once and the browsers reconnect elsewhere.
    """
    import uvicorn

    class GracefulServer(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            # A second after ready, so the first readiness probe is not kept waiting by the one
            # collection (~0.1 s) that freezes what boot and the first cycles built (runtime_api/observability/heap.py).
            loop = asyncio.get_running_loop()
            loop.call_later(HEAP_SETTLE_S, heap.install)
            self.heap_task = loop.create_task(heap.run(), name="gc-thaw")

        def handle_exit(self, sig, frame) -> None:
            on_exit()
            super().handle_exit(sig, frame)

    return GracefulServer(config)


def main() -> None:
    sys.exit(run())
