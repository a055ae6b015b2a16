"""Every route of the API, assembled from one list per area."""

from __future__ import annotations

from pathlib import Path

from . import agents, bets, chat, decisions, dev, health, market, ops, pages, replay, rooms, runtime, traders, web_dist


def all_routes(web_dist_dir: Path | None = None) -> list:
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
        *chat.routes,
        *bets.routes,
    ]
    from ..observability import routes as observability

    if web_dist_dir is not None:
        return [*api, *observability.routes, *pages.routes, *web_dist.build_routes(web_dist_dir, api)]
    return [*api, *observability.routes, *pages.routes, pages.prefixed(api)]
