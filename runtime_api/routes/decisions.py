"""Decision history and the decision audit trail."""

from __future__ import annotations

import re

import anyio
from starlette.requests import Request
from starlette.responses import Response

from .. import clock
from ..access.control_route import read_route
from ..errors import ApiError, bad_request
from ..web.http import query_int, query_str
from ..state.journal import merge_newest
from ..web.responses import ok
from ..market.calendar import market_of_exchange, trading_day_of

DAY_KEY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def latest_for(ctx, agent_id: str, limit: int) -> list[dict]:
    """In-memory decisions merged with today's JSONL log, newest first (worker thread)."""
    rec = ctx.svc.registry.get(agent_id) or {}
    market = market_of_exchange(str(rec.get("exchange_id") or ""))
    today = trading_day_of(clock.now_ms(), market)
    logged = ctx.svc.decisions.read_day(agent_id, today, limit=limit, from_end=True)
    return merge_newest(list(ctx.runtime.history.get(agent_id, [])), logged, limit=limit)


async def get_decisions_latest(request: Request) -> Response:
    """Latest decisions of one trader (memory + today's log) or of every trader (memory)."""
    ctx = request.app.state.ctx
    limit = query_int(request, "limit", 5, 1, 120)
    agent_id = query_str(request, "trader_id")
    if agent_id:
        ctx.trader(agent_id)
        return ctx.cache.get(("decisions", agent_id, limit), ctx.state_version(),
                             lambda: latest_for(ctx, agent_id, limit))

    def build():
        records = [r for history in ctx.runtime.history.values() for r in history]
        records.sort(key=lambda r: (r.get("timestamp") or "", r.get("cycle_number") or 0), reverse=True)
        return records[:limit]

    return ctx.cache.get(("decisions", None, limit), ctx.state_version(), build)


def _registered(ctx, request: Request) -> str:
    agent_id = request.path_params["agent_id"].strip()
    rec = ctx.svc.registry.get(agent_id)
    if not rec:
        raise ApiError(404, "agent_not_registered", f"{agent_id!r} is not registered")
    return agent_id


async def get_audit_latest(request: Request) -> Response:
    """The newest decision-audit records of a registered agent."""
    ctx = request.app.state.ctx
    agent_id = _registered(ctx, request)
    limit = query_int(request, "limit", 50, 1, 500)
    records = await anyio.to_thread.run_sync(lambda: ctx.svc.audit.read_latest(agent_id, limit))
    return ok({"trader_id": agent_id, "count": len(records), "records": records})


async def get_audit_day(request: Request) -> Response:
    """One day of a registered agent's decision audit, in file order."""
    ctx = request.app.state.ctx
    agent_id = _registered(ctx, request)
    day_key = query_str(request, "day_key")
    if not DAY_KEY_RE.match(day_key):
        raise bad_request("invalid_day_key", "day_key must be YYYY-MM-DD")
    limit = query_int(request, "limit", 2000, 1, 5000)
    records = await anyio.to_thread.run_sync(lambda: ctx.svc.audit.read_day(agent_id, day_key, limit))
    return ok({"trader_id": agent_id, "day_key": day_key, "count": len(records), "records": records})


routes = [
    read_route("/api/decisions/latest", get_decisions_latest),
    read_route("/api/agents/{agent_id}/decision-audit/latest", get_audit_latest),
    read_route("/api/agents/{agent_id}/decision-audit/day", get_audit_day),
]
