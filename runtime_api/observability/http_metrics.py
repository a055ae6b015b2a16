"""The ASGI middleware: one request id per request, and request counts and latency per route template.

The label is the matched Starlette route's template (`/api/agents/{agent_id}/start`), with the
mount prefix when the route was reached under `/onlytrade/`; a path no route matches counts as
`unmatched`, so a scan of random URLs cannot explode the series.
"""

from __future__ import annotations

import contextvars
import re
import time

from ..ids import new_id

REQUEST_ID = contextvars.ContextVar("request_id", default=None)
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.:-]")
_AUTH_FAILURES = {401: "unauthorized_control_token", 403: "insufficient_role", 429: "too_many_auth_failures"}


def _request_id(scope) -> tuple[str, bool]:
    """(the caller's x-request-id: letters, digits, `_.:-`, 64 at most; else a new one, given?)."""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            clean = _SAFE_ID.sub("", value.decode("latin-1"))[:64]
            if clean:
                return clean, True
    return new_id("req_"), False


def route_template(scope, root_path: str) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None or scope.get("endpoint") is None:
        return "unmatched"
    prefix = str(scope.get("root_path") or "")[len(root_path):]
    return prefix + path


class ObservabilityMiddleware:
    def __init__(self, app, instruments):
        self.app = app
        self.instruments = instruments

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, given = _request_id(scope)
        if given:  # the control gate reads a caller's id from the header: give it the clean one
            scope["headers"] = [*(h for h in scope.get("headers", ()) if h[0] != b"x-request-id"),
                                (b"x-request-id", request_id.encode())]
        scope["request_id"] = request_id  # ours: the control audit uses it too, unclaimed
        token = REQUEST_ID.set(request_id)
        root_path = str(scope.get("root_path") or "")
        status = {"code": 500}
        start = time.perf_counter()

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers") or [])
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            REQUEST_ID.reset(token)
            route = route_template(scope, root_path)
            method = scope.get("method", "GET")
            self.instruments.http_requests.labels(route, method, str(status["code"])).inc()
            self.instruments.http_duration.labels(route, method, str(status["code"])).observe(time.perf_counter() - start)
            if getattr(scope.get("route"), "control", False) and status["code"] in _AUTH_FAILURES:
                self.instruments.auth_failures.labels(_AUTH_FAILURES[status["code"]]).inc()
