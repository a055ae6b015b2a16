"""The ASGI middleware: one request id per request, and request counts and latency per route template.

The label is the matched Starlette route's template (`/api/agents/{agent_id}/start`), with the
mount prefix when the route was reached under `/onlytrade/`; a path no route matches counts as
`unmatched` and a method outside the standard ones as `other`, so a scan of random URLs or verbs
cannot explode the series.
"""

from __future__ import annotations

import contextvars
import re
import time

from ..ids import new_id

REQUEST_ID = contextvars.ContextVar("request_id", default=None)
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.:-]")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other counts as "other"
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
    label = scope.get("route_label")  # set by a layer that answered without the router
    if label is not None:
        return label
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None or scope.get("endpoint") is None:
        return "unmatched"
    prefix = str(scope.get("root_path") or "")[len(root_path):]
    return prefix + path


class ObservabilityMiddleware:
    """Counts and times every request and gives it an id (`x-request-id`).

    When the next layer can answer some requests without awaiting (the HTTP cache's 304s and kept
    answers: `answer(scope) -> (status, headers, body) | None`), it is asked first, and its answer
    is sent from here: the cheapest reads then cost no further layer and no send wrapper.
    """

    def __init__(self, app, instruments):
        self.app = app
        self.instruments = instruments
        self._answer = getattr(app, "answer", None)
        self._series: dict[tuple[str, str, int], tuple] = {}  # the labelled children, looked up once

    def _children(self, route: str, method: str, status: int) -> tuple:
        key = (route, method, status)
        found = self._series.get(key)
        if found is None:
            code = str(status)
            found = self._series[key] = (self.instruments.http_requests.labels(route, method, code),
                                         self.instruments.http_duration.labels(route, method, code))
        return found

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
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            answered = self._answer(scope) if self._answer is not None else None
            if answered is None:
                await self.app(scope, receive, send_wrapper)
                return
            status, headers, body = answered
            await send({"type": "http.response.start", "status": status,
                        "headers": [*headers, (b"x-request-id", request_id.encode())]})
            await send({"type": "http.response.body", "body": body})
        finally:
            REQUEST_ID.reset(token)
            self._count(scope, root_path, status, start)

    def _count(self, scope, root_path: str, status: int, start: float) -> None:
        method = scope.get("method", "GET")
        counter, duration = self._children(route_template(scope, root_path), method if method in METHODS else "other", status)
        counter.inc()
        duration.observe(time.perf_counter() - start)
        if status in _AUTH_FAILURES and getattr(scope.get("route"), "control", False):
            self.instruments.auth_failures.labels(_AUTH_FAILURES[status]).inc()
