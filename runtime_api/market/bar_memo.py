"""Work that depends only on a run of bars, done once per run and shared by every agent.

Each cycle every agent asks for its pool's bars, and within one replay bar (or one load of a live
file) they get the very same slices of one index: the sanity checks, the bar features and daily
bars aggregated from 1m bars are the same for all of them, and were recomputed per agent (the first
two about a third of the cycling CPU).

A run is identified by its length and its first and last bar objects. That names a run exactly when
runs are contiguous slices of lists that are never edited in place — true of `BarIndex`, which a
reload replaces rather than edits. An entry keeps its runs alive, so no new bar object can take an
identity an entry still holds; a list built afresh per call simply never hits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")

MEMO_ENTRIES = 256  # a few bars' worth for every pool symbol and kind of work


def run_identity(bars: Sequence[dict]) -> tuple[int, int, int]:
    if not bars:
        return (0, 0, 0)
    return (len(bars), id(bars[0]), id(bars[-1]))


class BarMemo:
    """A bounded memo of `build()` keyed by a label and the identities of the runs it reads."""

    def __init__(self, limit: int = MEMO_ENTRIES):
        self._limit = limit
        self._entries: dict[tuple, tuple[tuple, object]] = {}
        self._lock = threading.Lock()  # decisions are gathered on worker threads

    def get(self, label: Hashable, runs: tuple[Sequence[dict], ...], build: Callable[[], T]) -> T:
        key = (label, *(run_identity(run) for run in runs))
        entry = self._entries.get(key)
        if entry is not None:
            return entry[1]  # type: ignore[return-value]
        value = build()
        with self._lock:
            if len(self._entries) >= self._limit:
                del self._entries[next(iter(self._entries))]  # oldest first: runs only move forward
            self._entries[key] = (runs, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)
