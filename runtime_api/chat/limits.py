"""A sliding-window counter per key, bounded in memory (Node's maps were never pruned, W-C3)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindow:
    """At most `limit` hits per key in any `window_s`; `hit` records one when allowed."""

    def __init__(self, limit: int, window_s: float = 60.0, *, max_keys: int = 50000,
                 clock: Callable[[], float] = time.monotonic):
        self.limit = int(limit)
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[str, deque] = OrderedDict()

    def _live(self, key: str) -> deque:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        self._hits.move_to_end(key)
        cutoff = self.clock() - self.window_s
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def allowed(self, key: str) -> bool:
        return len(self._live(key)) < self.limit

    def hit(self, key: str) -> None:
        self._live(key).append(self.clock())
        while len(self._hits) > self.max_keys:  # evict the least recently used key
            self._hits.popitem(last=False)

    def retry_after_s(self, key: str) -> int:
        hits = self._live(key)
        if len(hits) < self.limit:
            return 0
        return max(1, int(hits[0] + self.window_s - self.clock()) + 1)
