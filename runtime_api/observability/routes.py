"""`GET /metrics` (Prometheus text format) and `GET /openapi.json`."""

from __future__ import annotations

import hashlib
import hmac

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import ApiError
from ..web.responses import JSONResponse
from ..settings import is_loopback
from . import observer
from .openapi import openapi_document


def token_matches(given: str, expected: str) -> bool:
    """Constant time, lengths included (both sides are hashed first)."""
    digest = lambda t: hashlib.sha256(t.encode()).digest()  # noqa: E731
    return bool(expected) and hmac.compare_digest(digest(given), digest(expected))


def _check_access(request: Request) -> None:
    s = request.app.state.ctx.settings
    if s.metrics_access == "public":
        return
    obs = observer.of(request.app.state.ctx)
    if s.metrics_access == "loopback":
        host = request.client.host if request.client else ""
        # A proxied request arrives from loopback too: it carries X-Forwarded-For, so it is refused.
        if is_loopback(host) and "x-forwarded-for" not in request.headers and "forwarded" not in request.headers:
            return
        obs.instruments.auth_failures.labels("metrics_not_loopback").inc()
        raise ApiError(403, "metrics_loopback_only", "GET /metrics answers loopback clients only (METRICS_ACCESS)")
    expected = s.metrics_token or s.control_api_token
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not expected:
        raise ApiError(503, "metrics_token_not_configured", "set METRICS_TOKEN (or CONTROL_API_TOKEN) for METRICS_ACCESS=token")
    if not token_matches(given, expected):
        obs.instruments.auth_failures.labels("unauthorized_metrics_token").inc()
        raise ApiError(401, "unauthorized_metrics_token", "send Authorization: Bearer <METRICS_TOKEN>")


async def get_metrics(request: Request) -> Response:
    """Prometheus metrics: decisions, fills, LLM, live data, kill switch, viewers, HTTP, event loop, process."""
    _check_access(request)
    registry = observer.of(request.app.state.ctx).registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def get_openapi(request: Request) -> Response:
    """This API's OpenAPI 3.1 document, generated from the route table."""
    app = request.app
    doc = getattr(app.state, "openapi_document", None)
    if doc is None:
        doc = openapi_document(app.routes, observer.of(app.state.ctx).build, strict=False)
        app.state.openapi_document = doc
    return JSONResponse(doc)


def _route(path: str, endpoint) -> Route:
    route = Route(path, endpoint, methods=["GET"], name=endpoint.__name__)
    route.control = False  # not under /onlytrade/: an operator's endpoint, not a viewer read
    return route


routes = [_route("/metrics", get_metrics), _route("/openapi.json", get_openapi)]
