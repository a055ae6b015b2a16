"""An edge's side of the viewer bus: one reader of the events and read snapshots, with a local
history for resumes, that notices every way of losing events and says so.

On (re)connect it checks that the last entry it saw still exists. If it does, reading resumes
right after it: nothing is lost, however long the outage. If it does not (Redis restarted without
its data, or trimmed past us), the listeners get a `gap` with the reason and the history restarts
from what Redis holds. While disconnected, `connected` is False and the listeners are told at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from . import keys
from .publisher import connect

log = logging.getLogger("onlytrade.edge.bus")

BLOCK_MS = 2000
READ_COUNT = 1000


@dataclass(frozen=True)
class Entry:
    key: tuple[int, int]
    id: str
    room: str
    event: str
    data: bytes


def _entry(entry_id: bytes, fields: dict) -> Entry:
    eid = entry_id.decode()
    return Entry(keys.parse_id(eid), eid, fields.get(b"room", b"").decode(), fields.get(b"event", b"").decode(),
                 fields.get(b"data", b"null"))


def wall_ms() -> int:
    return int(time.time() * 1000)


class BusSubscriber:
    def __init__(self, url: str, *, history: int, reconnect_s: float):
        self.redis = connect(url)
        self.history: deque[Entry] = deque(maxlen=history)
        self.packets: dict[str, tuple[str, bytes]] = {}
        self.reads: dict[str, tuple[str, str, bytes]] = {}
        self.reconnect_s = reconnect_s
        self.connected = False
        self.synced = asyncio.Event()
        self.last_id: str | None = None
        self._reads_last = "0-0"
        self.run_id: str | None = None
        self.gaps = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.disconnected_since_ms: int | None = wall_ms()
        self.on_entry: Callable[[Entry], None] = lambda entry: None
        self.on_state: Callable[[bool], None] = lambda connected: None
        self.on_gap: Callable[[dict, list[Entry]], None] = lambda info, entries: None

    def status(self) -> dict:
        return {"connected": self.connected, "last_event_id": self.last_id, "gaps": self.gaps,
                "reconnects": self.reconnects, "last_error": self.last_error,
                "disconnected_since_ms": self.disconnected_since_ms, "history": len(self.history),
                "rooms": len(self.packets), "reads": len(self.reads)}

    async def run(self) -> None:
        while True:
            try:
                await self._sync()
                self._set_connected(True)
                while True:
                    await self._read_once()
            except (RedisError, OSError) as exc:
                self._set_connected(False, exc)
                await asyncio.sleep(self.reconnect_s)
                self.reconnects += 1

    async def close(self) -> None:
        await self.redis.aclose()

    def _set_connected(self, connected: bool, exc: BaseException | None = None) -> None:
        if exc is not None:
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if connected == self.connected:
            return
        self.connected = connected
        self.disconnected_since_ms = None if connected else wall_ms()
        if connected:
            log.info("viewer bus: connected (last event %s)", self.last_id)
        else:
            log.warning("viewer bus lost (%s); reconnecting every %.1fs", self.last_error, self.reconnect_s)
        self.on_state(connected)

    async def _sync(self) -> None:
        r = self.redis
        run_id = (await r.info("server")).get("run_id")
        restarted = self.run_id is not None and run_id != self.run_id
        self.run_id = run_id
        newest = await r.xrevrange(keys.READS_CHANGED, count=1)
        self._reads_last = newest[0][0].decode() if newest else "0-0"
        self.reads = {**self.reads, **{k.decode(): keys.decode_read(v) for k, v in (await r.hgetall(keys.READS)).items()}}
        stored = {room.decode(): raw.split(b"\n", 1) for room, raw in (await r.hgetall(keys.PACKETS)).items()}
        # A restarted Redis holds no packet until the runtime republishes: keep serving the last one.
        self.packets = {**self.packets, **{room: (eid.decode(), data) for room, (eid, data) in stored.items()}}
        if self.last_id is None or self.last_id == "0-0":
            await self._load_history()
        elif not await r.xrange(keys.EVENTS, self.last_id, self.last_id):
            info = {"reason": "bus_restarted" if restarted else "bus_history_lost", "last_event_id": self.last_id}
            await self._load_history()
            info["resumed_at"] = self.history[0].id if self.history else None
            self.gaps += 1
            log.warning("viewer bus gap: %s after %s", info["reason"], info["last_event_id"])
            # What the new history holds was published after the loss: the viewers get it too.
            self.on_gap(info, list(self.history))
        # else: the last entry seen is still there, so XREAD resumes right after it: nothing lost
        self.synced.set()

    async def _load_history(self) -> None:
        newest_first = await self.redis.xrevrange(keys.EVENTS, count=self.history.maxlen)
        self.history.clear()
        self.history.extend(_entry(eid, fields) for eid, fields in reversed(newest_first))
        self.last_id = self.history[-1].id if self.history else "0-0"

    async def _read_once(self) -> None:
        reply = await self.redis.xread({keys.EVENTS: self.last_id, keys.READS_CHANGED: self._reads_last},
                                       count=READ_COUNT, block=BLOCK_MS)
        for stream, entries in reply or ():
            if stream == keys.READS_CHANGED.encode():
                for eid, fields in entries:
                    self._reads_last = eid.decode()
                    self.reads[fields[b"key"].decode()] = keys.decode_read(fields[b"value"])
                continue
            for eid, fields in entries:
                entry = _entry(eid, fields)
                self.last_id = entry.id
                self.history.append(entry)
                if entry.event == "stream_packet":
                    self.packets[entry.room] = (entry.id, entry.data)
                self.on_entry(entry)

    def after(self, key: tuple[int, int]) -> tuple[list[Entry], dict | None]:
        """Entries after `key` (a viewer's Last-Event-ID), and a gap report when some are gone."""
        hist = self.history
        if not hist:
            return [], ({"reason": "bus_history_lost", "last_event_id": "%d-%d" % key} if self.connected else None)
        if key >= hist[-1].key:
            return [], None  # up to date (or ahead of this edge: the viewer skips what it has seen)
        missed = [e for e in hist if e.key > key]
        if key < hist[0].key or not any(e.key == key for e in hist):
            return missed, {"reason": "history_trimmed" if key < hist[0].key else "unknown_event_id",
                            "last_event_id": "%d-%d" % key, "resumed_at": missed[0].id}
        return missed, None
