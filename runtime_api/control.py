"""The control plane's one gate: every mutating route is built by `control_route`.

It rate-limits failed attempts per client, checks the control token (header `x-control-token`,
then `Authorization: Bearer`, then the body's `control_token`, compared in constant time) before
any validation, and appends one audit line per call — accepted, rejected, unauthorized, invalid
or dry run — to the control audit file and to stdout. The token itself is never logged.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import ApiError
from .http import json_body, truthy
from .ids import new_id
from .responses import fail
from .storage import append_jsonl

log = logging.getLogger("onlytrade.control")

_ACTION_SAFE = re.compile(r"[^a-z0-9_.]")
FAILURE_WINDOW_S = 60.0
FAILURE_BURST = 10


def extract_token(request: Request, body: dict) -> str:
    header = request.headers.get("x-control-token", "").strip()
    if header:
        return header
    auth = request.headers.get("authorization", "").strip()
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    token = body.get("control_token")
    return token.strip() if isinstance(token, str) else ""


def token_matches(given: str, expected: str) -> bool:
    a, b = given.encode(), expected.encode()
    # compare_digest is constant-time for equal lengths; a length mismatch is simply a mismatch.
    return bool(expected) and hmac.compare_digest(a, b)


def client_ip(request: Request) -> str:
    forwarded = request.headers.get("x-forwarded-for", "")
    if forwarded.strip():
        return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


class FailureLimiter:
    """Sliding-window count of failed auth attempts per client: 429 after a burst."""

    def __init__(self, burst: int = FAILURE_BURST, window_s: float = FAILURE_WINDOW_S, clock=time.monotonic):
        self.burst, self.window_s, self.clock = burst, window_s, clock
        self._hits: dict[str, deque] = {}

    def blocked(self, ip: str) -> bool:
        hits = self._hits.get(ip)
        if not hits:
            return False
        cutoff = self.clock() - self.window_s
        while hits and hits[0] < cutoff:
            hits.popleft()
        return len(hits) >= self.burst

    def clear(self) -> None:
        self._hits.clear()

    def failure(self, ip: str) -> None:
        hits = self._hits.setdefault(ip, deque())
        hits.append(self.clock())
        if len(self._hits) > 10000:  # bounded memory under a spray of source addresses
            self._hits.clear()


class ControlAudit:
    """Durable JSONL audit of control calls, mirrored to stdout as `[control_audit] {...}`."""

    def __init__(self, path):
        self.path = path

    async def write(self, entry: dict) -> None:
        line = orjson.dumps(entry).decode()
        log.info("[control_audit] %s", line)
        try:
            await anyio.to_thread.run_sync(append_jsonl, self.path, entry)
        except OSError:
            log.exception("control audit append failed")

    def tail(self, limit: int) -> list[dict]:
        from .journal import read_jsonl_tail

        return read_jsonl_tail(self.path, limit)


@dataclass
class ControlCall:
    request: Request
    body: dict
    actor: str
    ip: str
    request_id: str
    action: str
    target: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return truthy(self.body.get("dry_run"))


Handler = Callable[[ControlCall], Awaitable[Response]]


def _result_of(status: int, dry_run: bool) -> str:
    if status < 400:
        return "dry_run" if dry_run else "ok"
    if status in (401, 429):
        return "unauthorized"
    if status == 503:
        return "unavailable"
    if status == 400 or status == 413:
        return "invalid"
    if status < 500:
        return "rejected"
    return "error"


def control_route(
    path: str, handler: Handler, *, action: str | Callable[[dict], str], name: str | None = None, methods: list[str] | None = None
) -> Route:
    """A route (POST by default) that requires the control token and is audited."""

    async def endpoint(request: Request) -> Response:
        ctx = request.app.state.ctx
        settings = ctx.settings
        ip = client_ip(request)
        request_id = request.headers.get("x-request-id") or new_id("req_")
        try:
            body = await json_body(request)
            body_error = None
        except ApiError as exc:
            body, body_error = {}, exc
        actor = str(body.get("actor") or request.headers.get("x-control-actor") or ip or "unknown")[:120]
        act = _ACTION_SAFE.sub("", action(body) if callable(action) else action)[:80]
        call = ControlCall(request, body, actor, ip, request_id, act, target=request.path_params.get("agent_id"))

        response: Response
        error: str | None = None
        if ctx.auth_failures.blocked(ip):
            response, error = fail(429, "too_many_auth_failures", "too many failed control attempts; retry later"), "too_many_auth_failures"
        elif not settings.control_token_configured and not settings.control_api_allow_unauthenticated:
            response, error = fail(503, "control_token_not_configured", "set CONTROL_API_TOKEN to enable control routes"), "control_token_not_configured"
        elif settings.control_token_configured and not token_matches(extract_token(request, body), settings.control_api_token):
            ctx.auth_failures.failure(ip)
            response, error = fail(401, "unauthorized_control_token"), "unauthorized_control_token"
        elif body_error is not None:
            response, error = fail(body_error.status, body_error.code, body_error.message), body_error.code
        else:
            try:
                response = await handler(call)
            except ApiError as exc:
                response, error = fail(exc.status, exc.code, exc.message), exc.code
            except Exception:
                log.exception("control action %s failed", act)
                response, error = fail(500, "internal_error", "control action failed; see server log"), "internal_error"
        entry = {
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": request_id,
            "action": act,
            "actor": actor,
            "ip": ip,
            "target": call.target,
            "result": _result_of(response.status_code, call.dry_run),
        }
        entry.update(call.extra)
        if error:
            entry["error"] = error
        await ctx.control_audit.write(entry)
        response.headers["x-request-id"] = request_id
        return response

    endpoint.__name__ = name or handler.__name__
    endpoint.__doc__ = handler.__doc__
    route = Route(path, endpoint, methods=methods or ["POST"], name=name or handler.__name__)
    route.control = True  # the route-table test proves every non-GET route carries this
    return route


def read_route(path: str, endpoint, *, methods: list[str] | None = None, name: str | None = None) -> Route:
    """A public, side-effect-free route (GET, or a read-only POST such as equity-history-batch)."""
    route = Route(path, endpoint, methods=methods or ["GET"], name=name or endpoint.__name__)
    route.control = False
    route.read_only = True
    return route
