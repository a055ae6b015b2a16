"""`/api/market/stream`: one shared poller for every connection, emitting only new bars.

The Node runtime polled every 500 ms per connection for any number of symbols (W19). Here one
task polls the union of what every viewer watches, and only while someone watches; viewers
that watch the same symbols share a channel whose `frames` event is serialised once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from runtime_api.web.responses import to_json
from runtime_api.streaming.admission import LEAVE_PER_TURN, Door
from runtime_api.streaming.sse import format_event
from runtime_api.streaming.viewer import StreamClosed, TooManySubscribers, Viewer, bye

log = logging.getLogger(__name__)

INTERVALS = ("1m", "5m", "15m", "30m", "60m", "1h", "4h", "1d")
DEFAULT_SYMBOL = "600519.SH"
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,31}$")

Bar = dict[str, Any]
GetLatest = Callable[[list[str], str], "dict[str, Bar | None] | Awaitable[dict[str, Bar | None]]"]


def parse_symbols(csv: str | None) -> list[str]:
    """`?symbols=A,b ,A` as ['A', 'B']: trimmed, upper-cased, de-duplicated, the default when empty."""
    return list(_normalise((csv or "").split(",")))


def _normalise(symbols: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip().upper() for s in symbols if s.strip())) or (DEFAULT_SYMBOL,)


def frames_envelope(frames: list[Bar]) -> dict[str, Any]:
    """`market.frames.v1` around some bars; mode and provider are "mixed" when the bars disagree."""

    def common(key: str, fallback: str) -> Any:
        values = {frame.get(key) for frame in frames}
        return values.pop() if len(values) == 1 and None not in values else fallback

    return {
        "schema_version": "market.frames.v1",
        "market": common("market", "CN-A"),
        "mode": common("mode", "mixed"),
        "provider": common("provider", "mixed"),
        "frames": frames,
    }


def _start_ts(bar: Bar) -> Any:
    window = bar.get("window")
    return window.get("start_ts_ms") if isinstance(window, dict) else None


class _Channel:
    """Viewers of the same symbols at the same interval."""

    def __init__(self, symbols: tuple[str, ...], interval: str):
        self.symbols = symbols
        self.interval = interval
        self.viewers: set[Viewer] = set()
        self.latest: dict[str, Bar] = {}
        self.failing = False

    def update(self, latest: dict[str, Bar | None]) -> None:
        self.failing = False
        changed = []
        for symbol in self.symbols:
            bar = latest.get(symbol)
            if not isinstance(bar, dict) or _start_ts(bar) is None:
                continue
            previous = self.latest.get(symbol)
            if previous is None or _start_ts(previous) != _start_ts(bar):
                self.latest[symbol] = bar
                changed.append(bar)
        if changed:
            self.fan_out(format_event(None, "frames", to_json(frames_envelope(changed))))

    def fail(self) -> None:
        if not self.failing:
            self.failing = True
            self.fan_out(format_event(None, "error", b'{"error":"stream_emit_failed"}'))

    def fan_out(self, chunk: bytes) -> None:
        for viewer in tuple(self.viewers):
            viewer.offer(chunk)

    def greeting(self) -> list[bytes]:
        if not self.latest:
            return []
        bars = [self.latest[s] for s in self.symbols if s in self.latest]
        return [format_event(None, "frames", to_json(frames_envelope(bars)))]


class MarketStream:
    """Latest-bar SSE for any number of viewers with a single poller task."""

    def __init__(self, get_latest: GetLatest, *, poll_ms: int = 500, max_symbols: int = 20,
                 keepalive_ms: int = 15_000, queue_size: int = 64, max_subscribers: int = 1000,
                 max_stream_ms: int = 3_600_000):
        self._get_latest = get_latest
        self.leave_door = Door(LEAVE_PER_TURN)
        self.poll_ms = poll_ms
        self.max_symbols = max_symbols
        self.keepalive_ms = keepalive_ms
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.max_stream_ms = max_stream_ms
        self._channels: dict[tuple[tuple[str, ...], str], _Channel] = {}
        self._viewer_channel: dict[Viewer, _Channel] = {}
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        self.polls = 0
        self.poll_failures = 0
        self.pollers_started = 0

    def subscribe(self, symbols: Iterable[str], interval: str = "1m") -> Viewer:
        """A viewer of these symbols; ValueError('too_many_symbols'|'invalid_symbol'|'invalid_interval')."""
        if self._closed:
            raise StreamClosed()
        wanted = _normalise(symbols)
        if len(wanted) > self.max_symbols:
            raise ValueError("too_many_symbols")
        if not all(_SYMBOL.match(s) for s in wanted):
            raise ValueError("invalid_symbol")
        if interval not in INTERVALS:
            raise ValueError("invalid_interval")
        if len(self._viewer_channel) >= self.max_subscribers:
            raise TooManySubscribers()
        key = (wanted, interval)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _Channel(wanted, interval)
        ready = format_event(None, "ready", to_json({"ok": True, "symbols": list(wanted), "interval": interval}))
        viewer = Viewer(queue_size=self.queue_size, keepalive_ms=self.keepalive_ms, max_stream_ms=self.max_stream_ms,
                        opening=[ready, *channel.greeting()], on_close=self._viewer_left, leave_door=self.leave_door)
        channel.viewers.add(viewer)
        self._viewer_channel[viewer] = channel
        if self._poller is None:
            self.pollers_started += 1
            self._poller = asyncio.create_task(self._poll(), name="market-stream-poller")
        return viewer

    def _viewer_left(self, viewer: Viewer) -> None:
        channel = self._viewer_channel.pop(viewer, None)
        if channel is None:
            return
        channel.viewers.discard(viewer)
        if not channel.viewers:
            del self._channels[(channel.symbols, channel.interval)]
        if not self._channels and self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_ms / 1000)
            await self.poll_once()

    async def poll_once(self) -> None:
        """Ask for the latest bars of every watched symbol once per interval in use, and fan out."""
        self.polls += 1
        by_interval: dict[str, list[_Channel]] = {}
        for channel in self._channels.values():
            by_interval.setdefault(channel.interval, []).append(channel)
        for interval, channels in by_interval.items():
            symbols = sorted({s for channel in channels for s in channel.symbols})
            try:
                latest = self._get_latest(symbols, interval)
                if inspect.isawaitable(latest):
                    latest = await latest
            except Exception:  # viewers get one `error` event per failing streak
                self.poll_failures += 1
                log.exception("market stream: latest bars for %s %s failed", interval, symbols)
                for channel in channels:
                    channel.fail()
                continue
            for channel in channels:
                channel.update(latest or {})

    def stats(self) -> dict[str, Any]:
        return {
            "subscribers": len(self._viewer_channel),
            "channels": len(self._channels),
            "poller_running": self._poller is not None,
            "pollers_started": self.pollers_started,
            "polls": self.polls,
            "poll_failures": self.poll_failures,
        }

    def end_streams(self, reason: str = "server_shutdown") -> None:
        """Refuse new viewers and end every stream with a `bye`."""
        self._closed = True
        farewell = bye(reason)
        for viewer in tuple(self._viewer_channel):
            viewer.end(reason, farewell)

    async def close(self) -> None:
        """End every stream and stop the poller (shutdown)."""
        self.end_streams()
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
