"""The cyclic garbage collector, tuned so that no collection stalls the event loop for long.

A full collection walks every container the process holds, on the event loop's thread with the
GIL held: about 80 ms for what boot builds (modules, manifests, replay data, calendars), and
another 50 ms or so for a thousand open viewer streams (about a hundred objects each). Under load
one ran every few seconds, and a connect storm set off several: the longest stalls viewers saw.

* After boot, and after every full collection, the survivors are frozen (`gc.freeze`): moved where
  the collector no longer walks them. Nothing collectable is frozen, because a full collection has
  just taken every unreachable cycle; frozen objects are still freed by reference counting, only a
  cycle formed among them afterwards would wait for the next thaw. (Measured: after four storms of
  a thousand viewers and a minute of cycling, a thaw found 10 such objects.)
* The oldest generation is collected after every second young (generation 1) collection, so a
  full collection walks only what has survived since the previous one: a few thousand objects.
* Every `GC_THAW_HOURS` the frozen objects are thawed and collected once (one long collection, a
  tenth of a second, logged), so a slow leak of frozen cycles cannot grow without bound.

The server process installs it (`runtime_api.server`); tests that build many apps in one process
do not, since freezing there would keep every earlier test's app alive.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("onlytrade.heap")

YOUNG_THRESHOLDS = (700, 10)  # CPython's defaults for generations 0 and 1
FULL_EVERY_YOUNG = 1  # a full collection once more than this many generation-1 collections ran
PAUSE_REPORT_MS = 20.0
FREEZE_COUNT_TTL_S = 5.0


class HeapPolicy:
    def __init__(self, thaw_every_s: float):
        self.thaw_every_s = thaw_every_s
        self.installed = False
        self.full_collections = 0
        self.thaws = 0
        self.last_thaw: dict | None = None
        self.max_pause_ms = 0.0
        self.pauses_over_20ms = 0
        self._started = 0.0
        self._frozen_count: int | None = None
        self._frozen_counted_at = 0.0

    def install(self) -> None:
        """Collect and freeze what boot built, then keep freezing the survivors of full collections."""
        if self.installed:
            return
        gc.collect()
        gc.freeze()
        gc.set_threshold(*YOUNG_THRESHOLDS, FULL_EVERY_YOUNG)
        gc.callbacks.append(self._on_collection)
        self.installed = True
        self._frozen_count = None

    def uninstall(self) -> None:
        if self.installed:
            gc.callbacks.remove(self._on_collection)
            gc.set_threshold(*YOUNG_THRESHOLDS, 10)
            gc.unfreeze()
            self.installed = False
            self._frozen_count = None

    def _on_collection(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - self._started) * 1000
        self.max_pause_ms = max(self.max_pause_ms, pause_ms)
        self.pauses_over_20ms += pause_ms > PAUSE_REPORT_MS
        if info["generation"] == 2:
            self.full_collections += 1
            gc.freeze()  # every unreachable cycle was just collected: only live objects move

    def thaw(self) -> dict:
        """Give the frozen objects back to the collector, collect everything once, freeze again."""
        frozen = gc.get_freeze_count()
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()  # the callback freezes the survivors
        report = {"frozen_before": frozen, "collected": collected, "frozen_after": gc.get_freeze_count(),
                  "took_ms": round((time.perf_counter() - started) * 1000, 1), "at_ms": int(time.time() * 1000)}
        self.thaws += 1
        self.last_thaw = report
        self._frozen_count = report["frozen_after"]
        log.info("gc thaw: %(frozen_before)d frozen objects, %(collected)d collected, %(took_ms).1f ms", report)
        return report

    async def run(self) -> None:
        if self.thaw_every_s <= 0:
            return
        while True:
            await asyncio.sleep(self.thaw_every_s)
            self.thaw()

    def frozen_objects(self) -> int:
        """gc.get_freeze_count() walks the whole frozen list (~0.4 ms for 80k objects), and status
        is read by every runtime-status build and metrics scrape: counted at most every few seconds
        (and afresh after an install or a thaw)."""
        now = time.monotonic()
        if self._frozen_count is None or now - self._frozen_counted_at >= FREEZE_COUNT_TTL_S:
            self._frozen_count, self._frozen_counted_at = gc.get_freeze_count(), now
        return self._frozen_count

    def status(self) -> dict:
        return {
            "installed": self.installed,
            "frozen_objects": self.frozen_objects(),
            "full_collections": self.full_collections,
            "max_pause_ms": round(self.max_pause_ms, 2),
            "pauses_over_20ms": self.pauses_over_20ms,
            "thaw_every_s": self.thaw_every_s,
            "thaws": self.thaws,
            "last_thaw": self.last_thaw,
        }
