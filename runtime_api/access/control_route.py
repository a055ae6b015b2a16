"""The control plane's one gate: every mutating route is built by `control_route`.

It identifies the caller's token (header `x-control-token`, then `Authorization: Bearer`, then the
body's `control_token`; see access.tokens for named tokens and roles) before any validation and
serves a valid token whatever the failure limiter says: only failures are limited, per real
client (access.client_address), with a growing backoff. A token's role must cover the route
(403 `insufficient_role`); with the two-person rule an admin action waits for a second admin
(access.approvals). Every call by a token holder gets one audit line naming the holder; calls
without a valid token are counted per client per minute (access.audit_fields). The token itself
is never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .audit_fields import RejectionCounter, claim
from .limiter import FailureLimiter
from .tokens import Holder
from ..errors import ApiError
from ..web.http import json_body, truthy
from ..ids import new_id
from ..web.responses import fail, ok
from ..state.storage import append_jsonl

__all__ = ["ControlAudit", "ControlCall", "FailureLimiter", "control_route", "read_route"]

log = logging.getLogger("onlytrade.control")

_ACTION_SAFE = re.compile(r"[^a-z0-9_.]")
# CONTROL_API_ALLOW_UNAUTHENTICATED (loopback only): callers act as this holder.
OPEN_HOLDER = Holder("unauthenticated", "admin", b"")


def extract_token(request: Request, body: dict) -> str:
    header = request.headers.get("x-control-token", "").strip()
    if header:
        return header
    auth = request.headers.get("authorization", "").strip()
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    token = body.get("control_token")
    return token.strip() if isinstance(token, str) else ""


class ControlAudit:
    """Durable JSONL audit of control calls, mirrored to stdout as `[control_audit] {...}`.

    Calls by token holders are written one line each; calls without a valid token only bump a
    per-client, per-minute counter, written as one line when the minute is over (or on a read
    of the audit, or at shutdown).
    """

    FLUSH_EVERY_S = 15.0

    def __init__(self, path):
        self.path = path
        self.rejections = RejectionCounter()

    async def write(self, entry: dict) -> None:
        log.info("[control_audit] %s", orjson.dumps(entry).decode())
        await self._append([entry] + self.rejections.take())

    LOGGED_CLIENTS = 20  # a spray from many addresses must not become a log flood either

    def reject(self, ip: str, action: str, error: str, ts: str) -> None:
        if self.rejections.add(ip, action, error, ts) and self.rejections.clients() <= self.LOGGED_CLIENTS:
            log.warning("[control_audit] rejected control call from %s (%s, %s); further rejections from it "
                        "this minute are counted, not logged one by one", ip, action, error)

    async def flush(self, *, all_minutes: bool = False) -> None:
        lines = self.rejections.take(all_minutes=all_minutes)
        for line in lines:
            log.info("[control_audit] %s", orjson.dumps(line).decode())
        await self._append(lines)

    async def run_flusher(self) -> None:
        while True:
            await anyio.sleep(self.FLUSH_EVERY_S)
            await self.flush()

    async def _append(self, entries: list[dict]) -> None:
        if not entries:
            return

        def append_all() -> None:
            for entry in entries:
                append_jsonl(self.path, entry)

        try:
            await anyio.to_thread.run_sync(append_all)
        except OSError:
            log.exception("control audit append failed")

    def tail(self, limit: int) -> list[dict]:
        from ..state.journal import read_jsonl_tail

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
    holder: Holder | None = None

    @property
    def dry_run(self) -> bool:
        return truthy(self.body.get("dry_run"))


Handler = Callable[[ControlCall], Awaitable[Response]]
RoleRule = str | Callable[[dict], str]


def _result_of(status: int, dry_run: bool) -> str:
    if status == 202:
        return "pending_approval"
    if status < 400:
        return "dry_run" if dry_run else "ok"
    if status in (401, 429):
        return "unauthorized"
    if status == 403:
        return "forbidden"
    if status == 503:
        return "unavailable"
    if status == 400 or status == 413:
        return "invalid"
    if status < 500:
        return "rejected"
    return "error"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def control_route(
    path: str, handler: Handler, *, action: str | Callable[[dict], str], name: str | None = None,
    methods: list[str] | None = None, role: RoleRule = "operator", two_person_exempt: bool = False,
) -> Route:
    """A route (POST by default) that requires a token whose role covers `role` and is audited.

    `role` may depend on the body (the kill switch: `activate` is operator, `deactivate` admin).
    Admin calls fall under the two-person rule when it is on.
    """

    async def endpoint(request: Request) -> Response:
        ctx = request.app.state.ctx
        access = ctx.access
        ip = access.client_of(request)
        try:
            body = await json_body(request)
            body_error = None
        except ApiError as exc:
            body, body_error = {}, exc
        act = _ACTION_SAFE.sub("", action(body) if callable(action) else action)[:80]

        holder: Holder | None = None
        response: Response | None = None
        error: str | None = None
        if not access.tokens.configured:
            if access.allow_unauthenticated:
                holder = OPEN_HOLDER
            else:
                response, error = fail(503, "control_token_not_configured", "set CONTROL_API_TOKEN to enable control routes"), "control_token_not_configured"
        else:
            holder = access.tokens.lookup(extract_token(request, body))
            if holder is None:
                # Checked only now: a valid token is served whatever this client's failure count.
                wait = access.limiter.retry_after(ip)
                if wait:
                    response = fail(429, "too_many_auth_failures", "too many failed control attempts; retry later",
                                    headers={"retry-after": str(int(wait) + 1)})
                    error = "too_many_auth_failures"
                else:
                    access.limiter.failure(ip)
                    response, error = fail(401, "unauthorized_control_token"), "unauthorized_control_token"

        if holder is None:
            # No identity: nothing the caller sent is recorded as fact, and the audit only counts it.
            ctx.control_audit.reject(ip, act, error or "unauthorized", _now_iso())
            response.headers["x-request-id"] = new_id("req_")
            return response

        claimed_id = claim(request.headers.get("x-request-id"))
        request_id = claimed_id or request.scope.get("request_id") or new_id("req_")  # the log lines' id
        claimed_actor = claim(body.get("actor")) or claim(request.headers.get("x-control-actor"))
        actor = claimed_actor or holder.name
        call = ControlCall(request, body, actor, ip, request_id, act, target=request.path_params.get("agent_id"),
                           holder=holder)
        if "approval_id" in request.path_params:  # approve/cancel lines name the request they touched
            call.extra["approval_id"] = claim(request.path_params["approval_id"])
        required = role(body) if callable(role) else role
        if not holder.may(required):
            response = fail(403, "insufficient_role", f"{act} needs the {required} role; this token ({holder.name}) is {holder.role}")
            error = "insufficient_role"
        elif body_error is not None:
            response, error = fail(body_error.status, body_error.code, body_error.message), body_error.code
        elif (required == "admin" and not two_person_exempt and not call.dry_run
              and (access.two_person or truthy(body.get("request_approval")))):
            try:
                pending = access.approvals.request(action=act, target=call.target or body.get("trader_id"), body=body,
                                                   handler=handler, holder=holder.name)
            except ApiError as exc:
                response, error = fail(exc.status, exc.code, exc.message), exc.code
            else:
                call.extra["approval_id"] = pending.id
                response = ok({"approval_required": True, "approval": pending.view(),
                               "message": f"waiting for a second admin: onlytrade-ops approve {pending.id}"}, status=202)
        else:
            try:
                response = await handler(call)
            except ApiError as exc:
                response, error = fail(exc.status, exc.code, exc.message), exc.code
            except Exception:
                log.exception("control action %s failed", call.action)
                response, error = fail(500, "internal_error", "control action failed; see server log"), "internal_error"
        entry = {
            "ts": _now_iso(),
            "request_id": request_id,
            "action": call.action,
            "actor": actor,
            "actor_claimed": claimed_actor is not None,  # what the caller says; `holder` is what its token proves
            "request_id_claimed": claimed_id is not None,
            "holder": holder.name,
            "role": holder.role,
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
    route.role = role
    return route


def client_ip(request: Request) -> str:
    """The real client of a request: the peer, or the right-most untrusted hop behind a trusted proxy."""
    return request.app.state.ctx.access.client_of(request)


def read_route(path: str, endpoint, *, methods: list[str] | None = None, name: str | None = None) -> Route:
    """A public, side-effect-free route (GET, or a read-only POST such as equity-history-batch)."""
    route = Route(path, endpoint, methods=methods or ["GET"], name=name or endpoint.__name__)
    route.control = False
    route.read_only = True
    return route
