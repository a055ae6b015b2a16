"""`onlytrade-runtime`: validate settings, take the single-instance lock, serve with uvicorn."""

from __future__ import annotations

import logging
import signal
import sys

from filelock import FileLock, Timeout

from .settings import Settings, SettingsError, is_loopback

EXIT_OK = 0
EXIT_BAD_SETTINGS = 2
EXIT_BOOT_FAILED = 3
EXIT_ALREADY_RUNNING = 4

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

    # uvicorn drains (lifespan shutdown waits for the in-flight cycle), then re-raises the signal
    # it caught; this handler turns that into a clean exit 0 for systemd.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_OK))
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False,
        timeout_graceful_shutdown=15, lifespan="on", log_config=logs.uvicorn_log_config(settings),
    )
    server = _graceful_server(config, on_exit=app.state.ctx.extra["viewer_streams"].end_streams_soon)
    try:
        server.run()
    except KeyboardInterrupt:  # the re-raised SIGINT after a graceful stop, as uvicorn.run treats it
        pass
    finally:
        instance_lock.release()
    if not server.started:
        return EXIT_BOOT_FAILED  # uvicorn has logged why (e.g. the port is taken)
    return EXIT_OK


def _graceful_server(config, *, on_exit):
    """uvicorn's server, ending open SSE streams (`event: bye`) as soon as a shutdown signal arrives.

    Viewers never hang up on their own, so without this the graceful drain would wait its whole
    timeout on them; ended streams let it finish at once and the browsers reconnect elsewhere.
    """
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            on_exit()
            super().handle_exit(sig, frame)

    return GracefulServer(config)


def main() -> None:
    sys.exit(run())
