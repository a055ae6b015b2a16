"""Market data for charts: frames and klines, built from real bars only."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ..control import read_route
from ..http import query_int, query_str
from ..market.bars import to_kline
from ..responses import ok


async def _frames(request: Request) -> dict:
    ctx = request.app.state.ctx
    symbol = query_str(request, "symbol") or "600519.SH"
    interval = query_str(request, "interval") or "5m"
    limit = query_int(request, "limit", 800, 1, 2000)
    source = query_str(request, "source") or None
    key = ("frames", symbol.upper(), interval, limit, source)
    version = ctx.replay_version() if not ctx.settings.live_mode else None
    cached = ctx.extra.setdefault("frames_cache", {}).get(key) if version is not None else None
    if cached and cached[0] == version:
        return cached[1]
    envelope = await anyio.to_thread.run_sync(lambda: ctx.svc.market.get_frames(symbol, interval, limit, source=source))
    if version is not None:
        cache = ctx.extra["frames_cache"]
        if len(cache) > 512:
            cache.clear()
        cache[key] = (version, envelope)
    return envelope


async def get_market_frames(request: Request) -> Response:
    """A market.frames.v1 envelope for one symbol and interval."""
    return ok(await _frames(request))


async def get_klines(request: Request) -> Response:
    """The same bars as klines ({openTime, open, high, low, close, volume, quoteVolume})."""
    envelope = await _frames(request)
    return ok([to_kline(bar) for bar in envelope["frames"]])


routes = [
    read_route("/api/market/frames", get_market_frames),
    read_route("/api/klines", get_klines),
]
