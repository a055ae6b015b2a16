"""Every route of the API, assembled from one list per area."""

from __future__ import annotations

from . import agents, decisions, dev, health, market, ops, pages, replay, rooms, runtime, traders


def all_routes() -> list:
    api = [
        *health.routes,
        *agents.routes,
        *traders.routes,
        *runtime.routes,
        *replay.routes,
        *decisions.routes,
        *market.routes,
        *dev.routes,
        *ops.routes,
        *rooms.routes,
    ]
    from ..observability import routes as observability

    return [*api, *observability.routes, *pages.routes, pages.prefixed(api)]
