"""Operations: live preflight (public) and the control audit trail (token required)."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ..control import ControlCall, control_route, read_route
from ..http import query_int
from ..preflight import live_preflight
from ..responses import ok


async def get_live_preflight(request: Request) -> Response:
    """Go-live checks with PASS/WARN/FAIL levels; always HTTP 200, the verdict is in `ok`."""
    return ok(await live_preflight(request.app.state.ctx))


async def get_control_audit(call: ControlCall) -> Response:
    """The newest control-audit lines (operators only)."""
    ctx = call.request.app.state.ctx
    limit = query_int(call.request, "limit", 100, 1, 1000)
    lines = await anyio.to_thread.run_sync(lambda: ctx.control_audit.tail(limit))
    return ok({"count": len(lines), "records": lines})


routes = [
    read_route("/api/ops/live-preflight", get_live_preflight),
    control_route("/api/ops/audit", get_control_audit, action="ops.audit.read", methods=["GET"]),
]
