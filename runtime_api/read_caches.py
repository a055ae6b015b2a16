"""The two reads that used to do work per request, served from per-version caches instead.

* Runtime status (`/api/agent/runtime/status`, polled every ~5 s by every page of the web client):
  the live-file freshness report behind it is recomputed on its own schedule
  (`FRESHNESS_REFRESH_MS`, in a worker thread), never per request, and the encoded body is cached
  per state version and per status max-age bucket (its counters move every cycle; a viewer sees
  them at most that old, as any cache in front would show them).
* Market frames and klines: encoded once per symbol, interval, limit, source and replay cursor (in
  live mode: per status max-age bucket, the live file being re-read on its own refresh gap), in a
  worker thread, single-flight, so a herd asking for 500 bars costs one encode.
"""

from __future__ import annotations

import asyncio
import logging

import anyio

from .http_cache import time_bucket
from .market.bars import to_kline
from .responses import JSONResponse, ok_bytes, to_json

log = logging.getLogger("onlytrade.read_caches")

KEY = "freshness_schedule"


class FreshnessSchedule:
    """The newest freshness report (`routes.runtime.live_freshness`) and a sequence number."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.report: dict | None = None
        self.seq = 0
        self._lock = asyncio.Lock()

    async def refresh(self) -> dict:
        from .routes.runtime import live_freshness

        report = await anyio.to_thread.run_sync(live_freshness, self.ctx)
        self.report, self.seq = report, self.seq + 1
        return report

    async def latest(self) -> dict:
        if self.report is None:
            async with self._lock:  # the first callers share one computation
                if self.report is None:
                    await self.refresh()
        return self.report  # type: ignore[return-value]

    async def run(self) -> None:
        """Recompute forever (live mode only: the replay report is a constant)."""
        if not self.ctx.settings.live_mode:
            return
        period = self.ctx.settings.freshness_refresh_ms / 1000
        while True:
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - a bad file must not stop the schedule
                log.exception("freshness refresh failed")
            await asyncio.sleep(period)


def schedule_of(ctx) -> FreshnessSchedule:
    sched = ctx.extra.get(KEY)
    if sched is None:
        sched = ctx.extra[KEY] = FreshnessSchedule(ctx)
    return sched


def runtime_status_version(ctx) -> tuple:
    return (ctx.state_version(), schedule_of(ctx).seq, time_bucket(ctx.settings.http_cache_status_max_age_s))


async def runtime_status_response(ctx) -> JSONResponse:
    from .routes.runtime import runtime_status

    freshness = await schedule_of(ctx).latest()
    return ctx.cache.get("runtime-status", runtime_status_version(ctx), lambda: runtime_status(ctx, freshness))


# ---- frames ---------------------------------------------------------------------------------


def frames_version(ctx) -> tuple:
    if ctx.settings.live_mode:
        return (ctx.svc.kill_switch.active, time_bucket(ctx.settings.http_cache_status_max_age_s))
    return ctx.replay_version()


def frames_key(kind: str, query) -> tuple:
    from .http import clamp_int

    symbol = (query.get("symbol") or "").strip() or "600519.SH"
    interval = (query.get("interval") or "").strip() or "5m"
    limit = clamp_int(query.get("limit"), 800, 1, 2000)
    source = (query.get("source") or "").strip() or None
    return (kind, symbol.upper(), interval, limit, source)


async def frames_response(ctx, kind: str, query) -> JSONResponse:
    """`kind` "frames" (a market.frames.v1 envelope) or "klines" (the same bars as klines)."""
    key = frames_key(kind, query)
    _, symbol, interval, limit, source = key

    def build() -> bytes:
        envelope = ctx.svc.market.get_frames(symbol, interval, limit, source=source)
        data = envelope if kind == "frames" else [to_kline(bar) for bar in envelope["frames"]]
        return ok_bytes(to_json(data))

    return JSONResponse(await ctx.cache.get_async(key, frames_version(ctx), build))
