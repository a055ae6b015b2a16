"""The two reads that used to do work per request, served from per-version caches instead.

* Runtime status (`/api/agent/runtime/status`, polled every ~5 s by every page of the web client):
  the live-file freshness report behind it is recomputed on its own schedule
  (`FRESHNESS_REFRESH_MS`, in a worker thread), never per request, and the encoded body is cached
  per state version and per status max-age bucket (its counters move every cycle; a viewer sees
  them at most that old, as any cache in front would show them).
* Market frames and klines: encoded once per symbol, interval, limit, source and replay cursor (in
  live mode: per status max-age bucket, the live file being re-read on its own refresh gap), in a
  worker thread, single-flight, so a herd asking for 500 bars costs one encode. Each encode reuses
  the previous one's bytes for every bar it still shows (the window slides by a bar per version),
  so a new version costs the new bars, not 500: its build holds the GIL, and every request of the
  herd waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

import anyio

from .http_cache import time_bucket
from ..market.bars import to_kline
from .responses import JSONResponse, ok_bytes, to_json

log = logging.getLogger("onlytrade.read_caches")

KEY = "freshness_schedule"
PIECES_KEY = "bar_pieces"


class FreshnessSchedule:
    """The newest freshness report (`routes.runtime.live_freshness`) and a sequence number."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.report: dict | None = None
        self.seq = 0
        self._lock = asyncio.Lock()

    async def refresh(self) -> dict:
        from ..routes.runtime import live_freshness

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
    from ..routes.runtime import runtime_status

    freshness = await schedule_of(ctx).latest()
    return ctx.cache.get("runtime-status", runtime_status_version(ctx), lambda: runtime_status(ctx, freshness))


# ---- frames ---------------------------------------------------------------------------------


class BarPieces:
    """The JSON of a list of bars as the join of each bar's own encoding, kept per read between builds.

    A piece is reused only for the very same bar object: index slices and live-file loads hand out
    the bars they hold and never edit one in place (a reload builds new ones), and the entry keeps
    its bars alive, so an identity is never taken over by another bar. Only the previous build's
    bars are kept per read: memory stays one window per read.
    """

    MAX_READS = 256

    def __init__(self):
        self._reads: dict[Hashable, dict[int, tuple[dict, bytes]]] = {}
        self._lock = threading.Lock()  # builds of two versions of one read may overlap
        self.reused = 0
        self.encoded = 0

    def encode(self, read: Hashable, bars: list[dict], convert: Callable[[dict], Any] | None = None) -> bytes:
        """`to_json([convert(bar) for bar in bars])`, byte for byte."""
        previous = self._reads.get(read) or {}
        pieces: list[bytes] = []
        kept: dict[int, tuple[dict, bytes]] = {}
        reused = 0
        for bar in bars:
            hit = previous.get(id(bar))
            if hit is not None and hit[0] is bar:
                piece = hit[1]
                reused += 1
            else:
                piece = to_json(convert(bar) if convert else bar)
            pieces.append(piece)
            kept[id(bar)] = (bar, piece)
        with self._lock:
            if read not in self._reads and len(self._reads) >= self.MAX_READS:
                self._reads.clear()
            self._reads[read] = kept
            self.reused += reused
            self.encoded += len(bars) - reused
        return b"[" + b",".join(pieces) + b"]"


def frames_version(ctx) -> tuple:
    if ctx.settings.live_mode:
        return (ctx.svc.kill_switch.active, time_bucket(ctx.settings.http_cache_status_max_age_s))
    # Bars move with the cursor, not with the agents: a decision (every state version) rebuilt
    # 500 bars that had not changed.
    return (ctx.svc.kill_switch.active, ctx.replay_state())


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

    pieces = ctx.extra.get(PIECES_KEY)
    if pieces is None:
        pieces = ctx.extra[PIECES_KEY] = BarPieces()

    def build() -> bytes:
        envelope = ctx.svc.market.get_frames(symbol, interval, limit, source=source)
        if kind == "klines":
            return ok_bytes(pieces.encode(key, envelope["frames"], to_kline))
        head = to_json({k: v for k, v in envelope.items() if k != "frames"})[:-1]  # "{...", its "}" follows the bars
        return ok_bytes(head + (b"," if len(head) > 1 else b"") + b'"frames":' + pieces.encode(key, envelope["frames"]) + b"}")

    return JSONResponse(await ctx.cache.get_async(key, frames_version(ctx), build))
