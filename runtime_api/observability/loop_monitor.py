"""Measures event-loop stalls: how late a periodic 10 ms sleep wakes up."""

from __future__ import annotations

import asyncio
import time
from collections import deque

TICK_S = 0.01


class LoopMonitor:
    def __init__(self, window: int = 6000):
        self.lags_ms: deque[float] = deque(maxlen=window)
        self.max_lag_ms = 0.0
        self.stalls_over_20ms = 0

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lag = max(0.0, (time.perf_counter() - start - TICK_S) * 1000)
            self.lags_ms.append(lag)
            self.max_lag_ms = max(self.max_lag_ms, lag)
            if lag > 20:
                self.stalls_over_20ms += 1

    def reset(self) -> None:
        self.lags_ms.clear()
        self.max_lag_ms = 0.0
        self.stalls_over_20ms = 0

    def status(self) -> dict:
        lags = sorted(self.lags_ms)
        p99 = lags[int(len(lags) * 0.99) - 1] if lags else 0.0
        return {
            "samples": len(lags),
            "max_lag_ms": round(self.max_lag_ms, 2),
            "p99_lag_ms": round(p99, 2),
            "stalls_over_20ms": self.stalls_over_20ms,
        }
