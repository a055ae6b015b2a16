"""Every route of the API, assembled from one list per area."""

from __future__ import annotations

from . import agents, decisions, dev, health, market, ops, replay, runtime, traders


def all_routes() -> list:
    return [
        *health.routes,
        *agents.routes,
        *traders.routes,
        *runtime.routes,
        *replay.routes,
        *decisions.routes,
        *market.routes,
        *dev.routes,
        *ops.routes,
    ]
