"""The replay engine: a cursor over the 1m timeline of a replay pack, advanced by an injected clock."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

from runtime_api.market.bars import DEFAULT_LIMIT, FrameIndex, clamp_limit, start_of
from runtime_api.market.live_files import wall_clock_ms
from runtime_api.market.calendar import trading_day_of

BAR_MS = 60_000
MIN_SPEED, MAX_SPEED = 0.1, 1000.0
MAX_STEP = 120


def clamp_speed(speed: float) -> float:
    """Speed clamped to 0.1..1000; ValueError when it is not a finite number."""
    value = float(speed)
    if not math.isfinite(value):
        raise ValueError("speed must be a finite number")
    return min(MAX_SPEED, max(MIN_SPEED, value))


class ReplayEngine:
    """Replays 1m bars at `speed` bars per wall-clock minute; `tick()` is called by the app's timer."""

    def __init__(
        self,
        index: FrameIndex,
        *,
        speed: float = 60.0,
        warmup_bars: int = 120,
        loop: bool = True,
        now_ms: Callable[[], int] | None = None,
        running: bool = True,
    ):
        self.index = index
        self.now_ms = now_ms or wall_clock_ms
        self.timeline = index.starts("1m")
        self.speed = clamp_speed(speed)
        self.warmup_bars = int(warmup_bars)
        self.loop = bool(loop)
        self.completed = False
        self.loops = 0  # wraps so far: the same trading day replayed again is a new session
        self.running = bool(running) and bool(self.timeline)
        self.cursor = min(max(self.warmup_bars - 1, 0), len(self.timeline) - 1) if self.timeline else -1
        self._carry = 0.0
        self._last_tick_ms = self.now_ms()
        self._build_days()

    def _build_days(self) -> None:
        # The producer's window.trading_day is authoritative; the Shanghai date is the fallback.
        day_of_start: dict[int, str] = {}
        first_bar: dict[str, dict[str, int]] = {}  # day -> symbol -> start of its first bar that day
        for symbol in self.index.symbols("1m"):
            for bar in self.index.frames(symbol, "1m"):
                start = start_of(bar)
                day = (bar.get("window") or {}).get("trading_day")
                day = day_of_start.setdefault(start, day or trading_day_of(start, "CN-A"))
                first_bar.setdefault(day, {}).setdefault(symbol, start)
        self._first_bar = first_bar
        self._days: list[str] = []
        self._day_first: list[int] = []  # timeline index where each day starts
        for i, ts in enumerate(self.timeline):
            day = day_of_start[ts]
            if not self._days or self._days[-1] != day:
                self._days.append(day)
                self._day_first.append(i)

    # ---- clock -----------------------------------------------------------------------------

    def _advance(self) -> bool:
        """Move one bar; False when the end is reached with loop off (the replay completes)."""
        if self.cursor < len(self.timeline) - 1:
            self.cursor += 1
            return True
        if self.loop:
            self.cursor = 0
            self.loops += 1
            return True
        self.running = False
        self.completed = True
        return False

    def tick(self) -> int:
        """Advance by the wall time since the last tick × speed (fractions carry over); returns bars moved."""
        now = self.now_ms()
        elapsed = max(0, now - self._last_tick_ms)
        self._last_tick_ms = now
        if not self.running or not self.timeline:
            return 0
        # Kept in speed-weighted ms, not fractional bars: exact for integer speeds and elapsed times.
        self._carry += elapsed * self.speed
        moved = 0
        while self._carry >= BAR_MS:
            self._carry -= BAR_MS
            if not self._advance():
                self._carry = 0.0
                break
            moved += 1
        return moved

    def step(self, bars: int = 1) -> int:
        """Advance 1..120 bars now, running or paused; returns bars moved."""
        if not self.timeline:
            return 0
        count = min(MAX_STEP, max(1, math.floor(float(bars))))
        moved = 0
        for _ in range(count):
            if not self._advance():
                break
            moved += 1
        return moved

    # ---- controls ----------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop advancing on ticks (`step` still works)."""
        self.running = False

    def resume(self) -> None:
        """Run again (only with a non-empty timeline); paused time does not count as elapsed."""
        if self.timeline:
            self.running = True
            self._last_tick_ms = self.now_ms()

    def set_speed(self, speed: float) -> None:
        """Set bars per wall-clock minute, clamped to 0.1..1000."""
        self.speed = clamp_speed(speed)

    def set_cursor(self, index: float) -> None:
        """Jump to a timeline index (floored and clamped); resets the fractional bar carry."""
        if not self.timeline:
            return
        self.cursor = min(max(math.floor(float(index)), 0), len(self.timeline) - 1)
        self._carry = 0.0
        if self.cursor < len(self.timeline) - 1:
            self.completed = False

    def set_loop(self, loop: bool) -> None:
        """Wrap at the end (True also clears `completed`) or stop there."""
        self.loop = bool(loop)
        if self.loop:
            self.completed = False

    # ---- views -------------------------------------------------------------------------------

    def current_ts_ms(self) -> int | None:
        """Start of the bar under the cursor (None with an empty timeline)."""
        return self.timeline[self.cursor] if self.cursor >= 0 else None

    def clock_ms(self) -> int | None:
        """The replay clock: the end of the current bar (None with an empty timeline)."""
        current = self.current_ts_ms()
        return None if current is None else current + BAR_MS

    def trading_day(self) -> str | None:
        """The trading day under the cursor."""
        if self.cursor < 0:
            return None
        return self._days[bisect.bisect_right(self._day_first, self.cursor) - 1]

    def session(self) -> str | None:
        """The trading day, tagged with the loop pass after a wrap (`2026-02-10#1`): T+1 locks per session."""
        day = self.trading_day()
        return day if day is None or not self.loops else f"{day}#{self.loops}"

    def symbols_at_cursor(self) -> set[str]:
        """Symbols that have bars on the cursor's trading day at or before the cursor.

        A symbol the pack does not cover on this day still has older bars (another day's), which
        would only ever give a stale, untradeable context."""
        current, day = self.current_ts_ms(), self.trading_day()
        if current is None:
            return set()
        return {symbol for symbol, first in self._first_bar.get(day, {}).items() if first <= current}

    def visible_frames(self, symbol: str, limit: int | None = DEFAULT_LIMIT) -> list[dict]:
        """A symbol's last `limit` 1m bars (None for all) that started at or before the cursor, never later ones."""
        clock = self.clock_ms()
        if clock is None:
            return []
        return self.index.frames(symbol, "1m", None if limit is None else clamp_limit(limit), until_ts_ms=clock)

    def status(self) -> dict:
        """The reference's replay status keys (§1.5)."""
        base = {
            "running": self.running,
            "speed": self.speed,
            "loop": self.loop,
            "completed": self.completed,
            "warmup_bars": self.warmup_bars,
            "cursor_index": self.cursor,
            "timeline_length": len(self.timeline),
            "current_ts_ms": self.current_ts_ms(),
            "day_count": len(self._days),
            "day_index": None,
            "trading_day": None,
            "is_day_start": False,
            "is_day_end": False,
            "day_bar_index": None,
            "day_bar_count": 0,
        }
        if self.cursor < 0:
            return base
        day = bisect.bisect_right(self._day_first, self.cursor) - 1
        first = self._day_first[day]
        last = self._day_first[day + 1] - 1 if day + 1 < len(self._day_first) else len(self.timeline) - 1
        base.update(
            day_index=day + 1,
            trading_day=self._days[day],
            is_day_start=self.cursor == first,
            is_day_end=self.cursor == last,
            day_bar_index=self.cursor - first + 1,
            day_bar_count=last - first + 1,
        )
        return base
