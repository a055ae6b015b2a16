"""One JSONL file per room (`<CHAT_DIR>/rooms/<room>.jsonl`), public messages and DMs together.

Appends are durable and locked (`storage.append_jsonl`, as the decision logs); the last
`retention` records of a room live in memory, so reads never touch the disk after a room's first
load. Past twice the retention the file is rewritten atomically with the last `retention` records
(Node's files grew forever, W-C7). Timestamps are taken under the room lock and never go
backwards, so file order is time order and `before_ts_ms` paging is consistent (W-C12).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

import orjson

from ..state.journal import read_jsonl_tail
from ..manifests import AGENT_ID_RE
from ..state.storage import append_jsonl, lock_for, write_bytes_atomic


def wall_ms() -> int:
    return int(time.time() * 1000)


class _Room:
    def __init__(self, records: list[dict], lines: int, retention: int):
        self.records: deque[dict] = deque(records, maxlen=retention)
        self.lines = lines
        self.last_ts = max((r.get("created_ts_ms") or 0 for r in records), default=0)
        self.last_public_ts: int | None = next(
            (r["created_ts_ms"] for r in reversed(records) if r.get("visibility") == "public"), None)


class ChatStore:
    """Blocking I/O on first load and append: call those from a worker thread."""

    def __init__(self, base_dir: Path, *, retention: int = 2000, now_ms=wall_ms):
        self.dir = Path(base_dir) / "rooms"
        self.retention = retention
        self.now_ms = now_ms
        self._rooms: dict[str, _Room] = {}
        self._lock = threading.RLock()
        self.compactions = 0

    def path_for(self, room_id: str) -> Path:
        if not AGENT_ID_RE.match(room_id):
            raise ValueError(f"invalid room id {room_id!r}")
        return self.dir / f"{room_id}.jsonl"

    @property
    def rooms_loaded(self) -> int:
        return len(self._rooms)

    def loaded(self, room_id: str) -> bool:
        return room_id in self._rooms

    def load(self, room_id: str) -> None:
        """Read a room's file tail once (unparseable lines are skipped)."""
        with self._lock:
            if room_id in self._rooms:
                return
            path = self.path_for(room_id)
            records = read_jsonl_tail(path, self.retention) if path.exists() else []
            lines = _count_lines(path)
            self._rooms[room_id] = _Room([r for r in records if isinstance(r, dict)], lines, self.retention)

    def append(self, room_id: str, record: dict) -> dict:
        """Stamp `created_ts_ms` (monotonic per room), append durably, keep in memory; returns the record."""
        with self._lock:
            self.load(room_id)
            room = self._rooms[room_id]
            stamped = {**record, "created_ts_ms": max(self.now_ms(), room.last_ts)}
            path = self.path_for(room_id)
            append_jsonl(path, stamped)
            room.records.append(stamped)
            room.lines += 1
            room.last_ts = stamped["created_ts_ms"]
            if stamped.get("visibility") == "public":
                room.last_public_ts = room.last_ts
            if room.lines > 2 * self.retention:
                self._compact(path, room)
            return stamped

    def _compact(self, path: Path, room: _Room) -> None:
        payload = b"".join(orjson.dumps(r) + b"\n" for r in room.records)
        with lock_for(path):
            write_bytes_atomic(path, payload, locked=False)
        room.lines = len(room.records)
        self.compactions += 1

    # ---- reads (memory only; the room must be loaded) --------------------------------------

    def _records(self, room_id: str) -> tuple:
        # tuple() copies the deque in one step under the GIL, so a worker thread's append can never
        # interleave with a read on the event loop ("deque mutated during iteration").
        room = self._rooms.get(room_id)
        return tuple(room.records) if room is not None else ()

    def public(self, room_id: str, limit: int, before_ts_ms: int | None = None) -> list[dict]:
        return _last(self._records(room_id), limit, before_ts_ms, lambda r: r.get("visibility") == "public")

    def private(self, room_id: str, public_id: str, limit: int, before_ts_ms: int | None = None) -> list[dict]:
        return _last(self._records(room_id), limit, before_ts_ms,
                     lambda r: r.get("visibility") == "private" and r.get("user_session_id") == public_id)

    def find(self, room_id: str, message_id: str) -> dict | None:
        return next((r for r in reversed(self._records(room_id)) if r.get("id") == message_id), None)

    def last_public_ts(self, room_id: str) -> int | None:
        room = self._rooms.get(room_id)
        return room.last_public_ts if room is not None else None


def _last(records, limit: int, before: int | None, keep) -> list[dict]:
    out: list[dict] = []
    for r in reversed(records):
        if not keep(r):
            continue
        ts = r.get("created_ts_ms")
        if before is not None and not (isinstance(ts, (int, float)) and ts < before):
            continue
        out.append(r)
        if len(out) >= limit:
            break
    out.reverse()
    return out


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return 0
