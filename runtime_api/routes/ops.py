"""Operations: live preflight (public), the control audit trail and two-person approvals (token required)."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ..access.control_route import ControlCall, control_route, read_route
from ..web.http import query_int
from ..preflight import live_preflight
from ..web.responses import ok


async def get_live_preflight(request: Request) -> Response:
    """Go-live checks with PASS/WARN/FAIL levels; always HTTP 200, the verdict is in `ok`."""
    return ok(await live_preflight(request.app.state.ctx))


async def get_control_audit(call: ControlCall) -> Response:
    """The newest control-audit lines (auditors and up); rejected-call counts are written out first."""
    ctx = call.request.app.state.ctx
    limit = query_int(call.request, "limit", 100, 1, 1000)
    await ctx.control_audit.flush(all_minutes=True)
    lines = await anyio.to_thread.run_sync(lambda: ctx.control_audit.tail(limit))
    return ok({"count": len(lines), "records": lines})


async def get_approvals(call: ControlCall) -> Response:
    """Admin actions waiting for a second admin (two-person rule)."""
    access = call.request.app.state.ctx.access
    pending = [p.view() for p in access.approvals.pending()]
    return ok({"two_person": access.two_person, "window_s": access.approvals.window_s, "count": len(pending),
               "pending": pending})


async def post_approve(call: ControlCall) -> Response:
    """Confirm another admin's request: the stored action runs now, as this holder, audited with both names."""
    pending = call.request.app.state.ctx.access.approvals.take(call.request.path_params["approval_id"], call.holder.name)
    call.action, call.target = pending.action, pending.target
    call.extra.update(approval_id=pending.id, requested_by=pending.requested_by, approved_by=call.holder.name)
    inner = ControlCall(call.request, pending.body, call.actor, call.ip, call.request_id, pending.action,
                        target=pending.target, holder=call.holder)
    response = await pending.handler(inner)
    call.target = inner.target
    return response


async def post_cancel(call: ControlCall) -> Response:
    """Withdraw a pending request (any admin)."""
    pending = call.request.app.state.ctx.access.approvals.cancel(call.request.path_params["approval_id"])
    call.target = pending.target
    call.extra.update(approval_id=pending.id, requested_by=pending.requested_by, cancelled_action=pending.action)
    return ok({"cancelled": pending.view()})


routes = [
    read_route("/api/ops/live-preflight", get_live_preflight),
    control_route("/api/ops/audit", get_control_audit, action="ops.audit.read", methods=["GET"], role="auditor"),
    control_route("/api/ops/approvals", get_approvals, action="ops.approvals.read", methods=["GET"], role="auditor"),
    control_route("/api/ops/approvals/{approval_id}/approve", post_approve, action="ops.approval.approve",
                  role="admin", two_person_exempt=True),
    control_route("/api/ops/approvals/{approval_id}/cancel", post_cancel, action="ops.approval.cancel",
                  role="admin", two_person_exempt=True),
]
