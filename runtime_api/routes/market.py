"""Market data for charts: frames and klines, built from real bars only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..access.control_route import read_route
from ..web.read_caches import frames_response


async def get_market_frames(request: Request) -> Response:
    """A market.frames.v1 envelope for one symbol and interval."""
    return await frames_response(request.app.state.ctx, "frames", request.query_params)


async def get_klines(request: Request) -> Response:
    """The same bars as klines ({openTime, open, high, low, close, volume, quoteVolume})."""
    return await frames_response(request.app.state.ctx, "klines", request.query_params)


routes = [
    read_route("/api/market/frames", get_market_frames),
    read_route("/api/klines", get_klines),
]
