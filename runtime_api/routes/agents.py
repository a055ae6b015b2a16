"""Agent registry: discovery, registration, start/stop, avatar assets."""

from __future__ import annotations

import re

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ..access.control_route import ControlCall, control_route, read_route
from ..errors import ApiError, bad_request
from ..manifests import AGENT_ID_RE
from ..web.responses import ok
from ..state.write_health import state_write_failed

ASSET_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$")


def agent_id_param(request: Request) -> str:
    agent_id = request.path_params["agent_id"].strip()
    if not AGENT_ID_RE.match(agent_id):
        raise bad_request("invalid_agent_id", "agent id must match ^[a-z][a-z0-9_]{1,63}$")
    return agent_id


async def get_agents_available(request: Request) -> Response:
    """Every valid agent manifest, sorted by id."""
    ctx = request.app.state.ctx
    return ctx.cache.get("agents-available", ctx.svc.registry.version, ctx.svc.registry.available)


async def get_agents_registered(request: Request) -> Response:
    """Registered agents with their lifecycle state."""
    ctx = request.app.state.ctx
    return ctx.cache.get("agents-registered", ctx.svc.registry.version, ctx.svc.registry.registered)


async def get_agent_asset(request: Request) -> Response:
    """An agent's avatar or other asset file from its manifest folder."""
    ctx = request.app.state.ctx
    agent_id = agent_id_param(request)
    file_name = request.path_params["file_name"]
    if not ASSET_RE.match(file_name) or ".." in file_name:
        raise bad_request("invalid_asset_file", "asset file name is not allowed")
    path = ctx.settings.resolve(ctx.settings.agents_dir) / agent_id / file_name
    if not path.is_file():
        raise ApiError(404, "agent_asset_not_found", "no such asset")
    return FileResponse(path)  # Cache-Control and ETag: http_cache (HTTP_CACHE_ASSET_MAX_AGE_S)


async def _mutate(call: ControlCall, method: str):
    ctx = call.request.app.state.ctx
    agent_id = agent_id_param(call.request)
    call.target = agent_id
    try:  # the registry writes its file first and changes memory only on success
        result = await anyio.to_thread.run_sync(getattr(ctx.svc.registry, method), agent_id)
    except OSError as exc:
        raise state_write_failed(exc, f"{method} {agent_id} refused, the registry is unchanged") from exc
    ctx.runtime.refresh_gate()
    ctx.runtime.bump()
    return ok(result)


async def post_agent_register(call: ControlCall) -> Response:
    """Register an agent (idempotent)."""
    return await _mutate(call, "register")


async def post_agent_unregister(call: ControlCall) -> Response:
    """Unregister an agent; its memory snapshot stays on disk."""
    return await _mutate(call, "unregister")


async def post_agent_start(call: ControlCall) -> Response:
    """Mark a registered agent running."""
    return await _mutate(call, "start")


async def post_agent_stop(call: ControlCall) -> Response:
    """Mark a registered agent stopped."""
    return await _mutate(call, "stop")


routes = [
    read_route("/api/agents/available", get_agents_available),
    read_route("/api/agents/registered", get_agents_registered),
    read_route("/api/agents/{agent_id}/assets/{file_name}", get_agent_asset),
    control_route("/api/agents/{agent_id}/register", post_agent_register, action="agent.register"),
    control_route("/api/agents/{agent_id}/unregister", post_agent_unregister, action="agent.unregister"),
    control_route("/api/agents/{agent_id}/start", post_agent_start, action="agent.start"),
    control_route("/api/agents/{agent_id}/stop", post_agent_stop, action="agent.stop"),
]
