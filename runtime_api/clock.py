"""One clock for every process: the wall clock, or a simulated one for a rehearsal.

`ONLYTRADE_CLOCK=2026-02-13T09:45:00+08:00` starts the clock at that time and `ONLYTRADE_CLOCK_SPEED`
makes it run at speed x real time. `ONLYTRADE_CLOCK_ANCHOR` (real time, epoch ms or ISO) says when
the simulated clock read `ONLYTRADE_CLOCK`, so the runtime, every data-job run and the CLI share one
timeline; without it the anchor is when this process configured its clock. The simulated time
advances on `time.monotonic()`, so a wall-clock jump never moves it backwards.

Only wall-clock *readings* go through `now_ms()` (freshness, the session calendar, timestamps, the
jobs' `now`); timers and rate limits stay on `time.monotonic()`. Strict live mode refuses a
simulated clock unless `ONLYTRADE_REHEARSAL=true` (Settings.validate), and every status surface
shows it (`status()`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

CLOCK_ENV = "ONLYTRADE_CLOCK"
SPEED_ENV = "ONLYTRADE_CLOCK_SPEED"
ANCHOR_ENV = "ONLYTRADE_CLOCK_ANCHOR"
SH_TZ = ZoneInfo("Asia/Shanghai")


def parse_instant(raw: str) -> int:
    """Epoch ms, or ISO-8601 (a naive time is Shanghai wall-clock time) -> epoch ms; ValueError otherwise."""
    text = raw.strip()
    if text.isdigit():
        return int(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SH_TZ)
    return int(parsed.timestamp() * 1000)


def iso_ms(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Clock:
    """Wall clock when `start_ms` is None; else start_ms + speed x (real time since anchor_ms)."""

    start_ms: int | None = None
    speed: float = 1.0
    anchor_ms: int = 0
    # (real epoch ms, monotonic s) read together when the clock was built
    _real0_ms: float = 0.0
    _mono0: float = 0.0

    @classmethod
    def build(cls, start_ms: int | None, speed: float = 1.0, anchor_ms: int | None = None) -> Clock:
        real0, mono0 = time.time() * 1000, time.monotonic()
        return cls(start_ms, float(speed), int(real0 if anchor_ms is None else anchor_ms), real0, mono0)

    @property
    def simulated(self) -> bool:
        return self.start_ms is not None

    def now_ms(self) -> int:
        if self.start_ms is None:
            return int(time.time() * 1000)
        real_elapsed = (self._real0_ms - self.anchor_ms) + (time.monotonic() - self._mono0) * 1000
        return int(self.start_ms + self.speed * real_elapsed)

    def status(self) -> dict[str, Any]:
        """What /health, runtime status, preflight and every packet show."""
        now = self.now_ms()
        if not self.simulated:
            return {"simulated": False, "now": iso_ms(now), "now_ms": now}
        return {
            "simulated": True,
            "now": iso_ms(now),
            "now_ms": now,
            "start": iso_ms(self.start_ms),
            "speed": self.speed,
            "anchor_ms": self.anchor_ms,
        }


_lock = threading.Lock()
_active: Clock | None = None


def from_values(clock: str, speed: float = 1.0, anchor: str = "") -> Clock:
    """A Clock from the three setting values (validated by Settings; raises ValueError here too)."""
    if not clock.strip():
        return Clock.build(None)
    return Clock.build(parse_instant(clock), speed, parse_instant(anchor) if anchor.strip() else None)


def configure(settings: Any) -> Clock:
    """Install the clock the settings describe; a process calls this once, after loading settings."""
    global _active
    clock = from_values(settings.onlytrade_clock, settings.onlytrade_clock_speed, settings.onlytrade_clock_anchor)
    with _lock:
        _active = clock
    return clock


def _from_env(env: Mapping[str, str]) -> Clock:
    try:
        speed = float(env.get(SPEED_ENV) or 1.0)
    except ValueError:
        speed = 1.0
    return from_values(env.get(CLOCK_ENV) or "", speed, env.get(ANCHOR_ENV) or "")


def active() -> Clock:
    """The configured clock; a process that never configured one reads the environment once."""
    global _active
    with _lock:
        if _active is None:
            _active = _from_env(os.environ)
        return _active


def now_ms() -> int:
    return active().now_ms()


def now_iso() -> str:
    return iso_ms(now_ms())


def status() -> dict[str, Any]:
    return active().status()


def reset() -> None:
    """Forget the configured clock (tests)."""
    global _active
    with _lock:
        _active = None
