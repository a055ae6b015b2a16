"""The daily bet board routes (`/api/bets/*`): virtual points, Node shapes and codes."""

from __future__ import annotations

import anyio

from starlette.requests import Request
from starlette.responses import Response

from ..audience import audience_of
from ..access.control_route import client_ip, read_route
from ..errors import ApiError
from ..web.http import json_body, query_str
from ..numbers import finite
from ..web.responses import ok
from ..access.viewer_actions import viewer_route


def _bets(request: Request):
    bets = audience_of(request.app.state.ctx).bets
    if bets is None:
        raise ApiError(404, "bets_disabled", "the bet board is off on this server (BETS_ENABLED=false)")
    return bets


def _viewer(request: Request, credential) -> str | None:
    """The public id of a credential, or None (reads never fail on a bad session)."""
    return audience_of(request.app.state.ctx).sessions.verify(credential)


async def get_bets_market(request: Request) -> Response:
    """Today's board (`bets.market.v1`) for a market or a trader's market; `my_bet` needs the session credential."""
    bets = _bets(request)
    market = bets.market_of_request(query_str(request, "market"), query_str(request, "trader_id"))
    viewer = _viewer(request, request.query_params.get("user_session_id"))
    return ok(await anyio.to_thread.run_sync(bets.payload, market, viewer))  # snapshots may load from disk


async def post_bets_place(request: Request) -> Response:
    """Place or replace today's bet (one per session and day, until 30 minutes before the close)."""
    bets = _bets(request)
    body = await json_body(request)
    if not str(body.get("user_session_id") or "").strip():
        raise ApiError(400, "invalid_user_session_id", "user_session_id is required")
    trader_id = str(body.get("trader_id") or "").strip()
    if not trader_id:
        raise ApiError(400, "invalid_trader_id", "trader_id is required")
    aud = audience_of(request.app.state.ctx)
    public_id = aud.chat.verify(body.get("user_session_id"))
    nickname = aud.sessions.set_nickname(public_id, body.get("user_nickname"))
    return ok(await bets.place(public_id, nickname, trader_id, body.get("stake_amount"), client_ip(request)))


async def get_bets_credits(request: Request) -> Response:
    """The points leaderboard (`bets.credits.v1`; limit 1..200, default 20) and the caller's row."""
    bets = _bets(request)
    value = finite(request.query_params.get("limit"))
    limit = 20 if not value else int(max(1, min(200, value)))  # 0 counts as missing, as Node
    return ok(bets.credits(_viewer(request, request.query_params.get("user_session_id")), limit))


routes = [
    read_route("/api/bets/market", get_bets_market),
    viewer_route("/api/bets/place", post_bets_place,
                 protections="session credential; one bet per session and day; stake checked against the balance; per-address rate limit"),
    read_route("/api/bets/credits", get_bets_credits),
]
