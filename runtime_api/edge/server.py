"""`onlytrade-edge`: serve viewers from the viewer bus (VIEWER_BUS_URL), on HOST:PORT."""

from __future__ import annotations

import logging
import socket
import sys

from ..settings import Settings, SettingsError

EXIT_BAD_SETTINGS = 2


def run(environ=None) -> int:
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        print(f"onlytrade-edge: invalid setting {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_SETTINGS
    if not settings.viewer_bus_url.startswith(("redis://", "rediss://", "unix://")):
        print("onlytrade-edge: set VIEWER_BUS_URL=redis://host:port/db (the runtime's viewer bus)", file=sys.stderr, flush=True)
        return EXIT_BAD_SETTINGS
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from ..observability.heap import HeapPolicy
    from ..server import _graceful_server
    from ..streaming.admission import Door, paced_protocol, stream_tails
    from .app import create_edge_app

    name = settings.edge_name or f"{socket.gethostname()}:{settings.port}"
    app = create_edge_app(settings, edge_name=name)
    logging.getLogger("onlytrade.edge").info("onlytrade-edge %s listen=%s:%s", name, settings.host, settings.port)
    door = Door()  # a connect storm on an edge is paced as on the runtime
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False,
                            timeout_graceful_shutdown=5, lifespan="on",
                            http=paced_protocol(AutoHTTPProtocol, door, stream_tails(app.routes)))
    heap = HeapPolicy(thaw_every_s=settings.gc_thaw_hours * 3600)
    server = _graceful_server(config, on_exit=lambda: app.state.edge.end_streams(), heap=heap)
    server.run()
    return 0 if server.started else 3


def main() -> None:
    sys.exit(run())
