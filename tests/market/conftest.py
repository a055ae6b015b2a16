"""Market test helpers: an injectable clock, bar builders and atomic file writes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from runtime_api.market.calendar import timezone_of


class Clock:
    """A manual clock: tests move time with `advance` instead of sleeping."""

    def __init__(self, now_ms: int):
        self.now = now_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


def local_ms(text: str, market: str = "CN-A") -> int:
    """'2026-02-13 09:30:00' on the market's wall clock, as epoch ms."""
    naive = datetime.fromisoformat(text)
    return int(naive.replace(tzinfo=timezone_of(market)).timestamp() * 1000)


def make_bar(symbol: str, start_ms: int, close: float, *, interval: str = "1m", volume: int = 100, market: str = "CN-A", **bar) -> dict:
    minutes = {"1m": 1, "1d": 1440}[interval]
    values = {"open": close, "high": close, "low": close, "close": close, "volume_shares": volume, "turnover_cny": volume * close}
    values.update(bar)
    us = market == "US"
    return {
        "schema_version": "market.bar.v1",
        "market": market,
        "mode": "real",
        "provider": "test-feed",
        "feed": "bars",
        "seq": 1,
        "event_ts_ms": start_ms + minutes * 60_000,
        "ingest_ts_ms": start_ms + minutes * 60_000,
        "instrument": {
            "symbol": symbol,
            "exchange": "OTHER" if us else "SSE",
            "timezone": "America/New_York" if us else "Asia/Shanghai",
            "currency": "USD" if us else "CNY",
        },
        "interval": interval,
        "window": {
            "start_ts_ms": start_ms,
            "end_ts_ms": start_ms + minutes * 60_000,
            "trading_day": datetime.fromtimestamp(start_ms / 1000, timezone_of(market)).date().isoformat(),
        },
        "session": {"phase": "continuous_am", "is_halt": False, "is_partial": False},
        "bar": values,
    }


def write_atomic(path: Path, payload: object, *, raw: bytes | None = None) -> None:
    """Write JSON (or raw bytes) the way the collectors do: temp file + os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(raw if raw is not None else json.dumps(payload).encode())
    os.replace(tmp, path)


def frames_file(frames: list[dict], provider: str = "test-feed") -> dict:
    return {"schema_version": "market.frames.v1", "market": "CN-A", "mode": "real", "provider": provider, "frames": frames}


@pytest.fixture
def clock() -> Clock:
    return Clock(local_ms("2026-02-13 10:00:00"))


@pytest.fixture
def bar() -> Callable[..., dict]:
    return make_bar


@pytest.fixture
def at() -> Callable[..., int]:
    return local_ms


@pytest.fixture
def write() -> Callable[..., None]:
    return write_atomic


@pytest.fixture
def batch() -> Callable[..., dict]:
    return frames_file
