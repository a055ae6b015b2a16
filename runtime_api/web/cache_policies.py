"""Which state each public GET of the runtime depends on: the table behind its ETags.

Keys are route templates (the `/onlytrade` mount shares them); values name the max-age class and
the version function `(ctx, path_params, query) -> hashable`. Versions are the same ones the
routes' own response caches are keyed by, so a 304 means exactly "the cached body is unchanged".
A route missing here is `no-store` (http_cache's safe default).
"""

from __future__ import annotations

from ..errors import ApiError
from .http_cache import BODY, Policy, time_bucket
from .read_caches import frames_version, runtime_status_version
from ..routes.rooms import KEY as VIEWER_STREAMS
from ..routes.traders import snapshot_version


def _registry(ctx, params, query):
    return ctx.svc.registry.version


def _state(ctx, params, query):
    return ctx.state_version()


def _replay(ctx, params, query):
    return ctx.replay_version()


def _constant(ctx, params, query):
    return 0


def _replay_status(ctx, params, query):
    if ctx.svc.replay is None:  # live provider status moves with the clock
        return (ctx.state_version(), time_bucket(ctx.settings.http_cache_status_max_age_s))
    return ctx.replay_version()


def _clocked(ctx, params, query):
    """Views that read the wall clock (session state, runtime minutes)."""
    return (ctx.replay_version(), time_bucket(ctx.settings.http_cache_status_max_age_s))


def _trader_snapshot(ctx, params, query):
    agent_id = ctx.trader_id_or_default((query.get("trader_id") or "").strip())
    return (agent_id, snapshot_version(ctx, agent_id))


def _runtime_status(ctx, params, query):
    return runtime_status_version(ctx)


def _room_packet(ctx, params, query):
    """The packet the room hub holds fresh; while a build is due, the body is hashed instead."""
    room_id = params["room_id"]
    if not ctx.svc.registry.has(room_id):  # the route answers its own 400 or 404 (packet.room_record)
        raise ApiError(404, "room_not_found")
    version = ctx.extra[VIEWER_STREAMS].hub.packet_version(room_id, query.get("decision_limit"))
    return BODY if version is None else version


def _frames(ctx, params, query):
    return frames_version(ctx)


def _asset_file(ctx, params, query):
    """An avatar file's (mtime, size); a missing file lets the route answer its own 404."""
    try:
        st = (ctx.settings.resolve(ctx.settings.agents_dir) / params["agent_id"] / params["file_name"]).stat()
    except (OSError, ValueError):
        raise ApiError(404, "agent_asset_not_found") from None
    return (st.st_mtime_ns, st.st_size)


RUNTIME_POLICIES: dict[str, Policy] = {
    # status class: changes every cycle or bar
    "/api/agent/runtime/status": Policy("status", _runtime_status),
    "/api/replay/runtime/status": Policy("status", _replay_status),
    "/api/status": Policy("status", _clocked),
    "/api/statistics": Policy("status", _state),
    "/api/decisions/latest": Policy("status", _state),
    "/api/agents/{agent_id}/decision-audit/latest": Policy("status", _state),
    "/api/account": Policy("status", _trader_snapshot),
    "/api/positions": Policy("status", _trader_snapshot),
    "/api/market/frames": Policy("status", _frames),
    "/api/klines": Policy("status", _frames),
    "/api/agent/market-context": Policy("status", _clocked),
    "/api/rooms/{room_id}/stream-packet": Policy("status", _room_packet),
    # list class
    "/api/config": Policy("list", _constant),
    "/api/orders": Policy("list", _constant),
    "/api/open-orders": Policy("list", _constant),
    "/api/traders": Policy("list", _registry),
    "/api/symbols": Policy("list", _registry),
    "/api/agents/available": Policy("list", _registry),
    "/api/agents/registered": Policy("list", _registry),
    "/api/traders/{trader_id}/config": Policy("list", _registry),
    "/api/competition": Policy("list", _replay),
    "/api/top-traders": Policy("list", _replay),
    "/api/agent/memory": Policy("list", _state),
    "/api/equity-history": Policy("list", _trader_snapshot),
    "/api/positions/history": Policy("list", _trader_snapshot),
    "/api/agents/{agent_id}/decision-audit/day": Policy("list", _state),
    # assets: their URLs carry ?v=<boot>
    "/api/agents/{agent_id}/assets/{file_name}": Policy("asset", _asset_file),
}
