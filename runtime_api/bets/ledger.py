"""The bets ledger file (`bets.ledger.v2`, Node's layout): loaded once, every change written atomically.

A change is applied to a copy under a lock, written (temp file, fsync, rename, under the file
lock), and only then becomes the live state: a failed write changes nothing (W-B5). An unparseable
file stops boot (`CorruptFileError`), it is never silently reset.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..state.storage import CorruptFileError, read_json, write_json_atomic

SCHEMA = "bets.ledger.v2"
KEEP_DAYS = 60


def empty() -> dict:
    return {"schema_version": SCHEMA, "days": {}, "credits_by_session": {}, "replay_round": 0}


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)
        data = read_json(self.path, None)
        if data is None:
            data = empty()
        if not isinstance(data, dict) or not isinstance(data.get("days", {}), dict) \
                or not isinstance(data.get("credits_by_session", {}), dict):
            raise CorruptFileError(self.path, "not a bets.ledger.v2 object")
        self.state: dict = {**empty(), **data}
        self._lock = threading.Lock()
        self.writes = 0

    def change(self, mutate: Callable[[dict], Any]) -> Any:
        """Run `mutate(copy)`; when it returns without raising, persist the copy and adopt it. Blocking."""
        with self._lock:
            draft = copy.deepcopy(self.state)
            result = mutate(draft)
            _prune(draft)
            write_json_atomic(self.path, draft)
            self.state = draft
            self.writes += 1
            return result


def _prune(state: dict) -> None:
    """Keep the newest KEEP_DAYS settled days (pending ones always stay)."""
    days = state["days"]
    settled = sorted((d.get("updated_ts_ms") or 0, key) for key, d in days.items() if d.get("settlement_status") == "settled")
    for _, key in settled[:-KEEP_DAYS] if len(settled) > KEEP_DAYS else []:
        days.pop(key, None)
