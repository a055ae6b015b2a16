"""How much of the machine one client may hold: descriptors, connections, unread bytes.

The process has `RLIMIT_NOFILE` descriptors (systemd: `LimitNOFILE`). A `reserve` of them is
kept for what must never fail for want of one (snapshot and decision writes, logs, the LLM
client); connections get the rest, and the SSE caps are fractions of that so viewers can never
crowd out the operator's requests.

`ConnectionGuard` wraps uvicorn's HTTP protocol (`uvicorn.Config(http=...)`) and, once a second:
- closes a connection that has not sent a complete request head within `header_timeout_s`
  (idle keep-alive included) or whose request body is unfinished after `body_timeout_s`;
- aborts a connection whose unsent bytes (asyncio's write buffer, bounded together with the
  kernel send buffer by `send_buffer`) stay at the bound without draining for `send_timeout_s`:
  a viewer that never reads is dropped instead of holding memory and a descriptor for ever;
- at the connection cap, makes room for a new connection by closing the longest-idle one (an
  idle flood cannot starve real requests), refusing the newcomer only when none is idle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("onlytrade.connections")

MAX_ROOM_VIEWERS = 2000
MAX_MARKET_VIEWERS = 1000
SWEEP_S = 1.0
WARN_EVERY_S = 10.0


@dataclass(frozen=True)
class DescriptorBudget:
    limit: int
    reserve: int
    connections: int
    room_viewers: int
    market_viewers: int


def descriptor_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


def descriptor_budget(settings: Any, limit: int | None = None) -> DescriptorBudget:
    limit = descriptor_limit() if limit is None else limit
    reserve = settings.descriptor_reserve or max(64, limit // 10)
    reserve = min(reserve, limit - 16)
    room_for_connections = max(8, limit - reserve)
    connections = min(settings.http_max_connections or room_for_connections, room_for_connections)
    # Viewers hold their connection for the whole stream: at most 70 % of the cap between them.
    return DescriptorBudget(limit=limit, reserve=reserve, connections=connections,
                            room_viewers=max(1, min(MAX_ROOM_VIEWERS, connections * 5 // 10)),
                            market_viewers=max(1, min(MAX_MARKET_VIEWERS, connections * 2 // 10)))


_FD_COUNT_TTL_S = 1.0
_fd_count: list = [0.0, None]  # (when, count): listing /proc/self/fd costs ~1 ms with 1,000 viewers


def open_descriptors() -> int | None:
    """Open descriptors of this process, counted at most once a second (/health is polled often)."""
    now = time.monotonic()
    if now - _fd_count[0] >= _FD_COUNT_TTL_S or _fd_count[1] is None:
        try:
            _fd_count[1] = len(os.listdir("/proc/self/fd"))
        except OSError:
            _fd_count[1] = None
        _fd_count[0] = now
    return _fd_count[1]


class _Conn:
    __slots__ = ("proto", "transport", "phase", "cycle_id", "since", "stalled_since", "last_unsent")

    def __init__(self, proto, transport, now: float):
        self.proto, self.transport = proto, transport
        self.phase, self.cycle_id, self.since, self.stalled_since, self.last_unsent = "head", None, now, None, 0


def _phase(proto) -> tuple[str, int | None]:
    cycle = getattr(proto, "cycle", None)
    if cycle is None or cycle.response_complete:
        return "head", id(cycle) if cycle is not None else None
    return ("body" if cycle.more_body else "busy"), id(cycle)


class ConnectionGuard:
    def __init__(self, *, max_connections: int, header_timeout_s: float, body_timeout_s: float,
                 send_timeout_s: float, send_buffer: int, clock=time.monotonic):
        self.max_connections = max_connections
        self.header_timeout_s, self.body_timeout_s = header_timeout_s, body_timeout_s
        self.send_timeout_s, self.send_buffer = send_timeout_s, send_buffer
        self._clock = clock
        self._open: dict[int, _Conn] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._last_warn = 0.0
        self.counters = {"evicted_idle": 0, "refused_at_cap": 0, "header_timeouts": 0, "body_timeouts": 0,
                         "stalled_writers_dropped": 0}

    @classmethod
    def from_settings(cls, settings: Any, budget: DescriptorBudget) -> ConnectionGuard:
        return cls(max_connections=budget.connections, header_timeout_s=settings.http_header_timeout_s,
                   body_timeout_s=settings.http_body_timeout_s, send_timeout_s=settings.http_send_timeout_s,
                   send_buffer=settings.http_send_buffer_bytes)

    def protocol(self, base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
        """`base` (uvicorn's HTTP protocol) reporting its connections to this guard."""
        guard = self

        class Guarded(base):  # type: ignore[misc, valid-type]
            def connection_made(self, transport) -> None:
                super().connection_made(transport)
                guard._opened(self, transport)

            def connection_lost(self, exc) -> None:
                guard._open.pop(id(self), None)
                super().connection_lost(exc)

        Guarded.__name__ = f"Guarded{base.__name__}"
        return Guarded

    def stats(self) -> dict:
        return {"open": len(self._open), "max": self.max_connections, **self.counters}

    # ---- events ------------------------------------------------------------------------------

    def _opened(self, proto, transport) -> None:
        now = self._clock()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # bounds what the kernel holds for a client that does not read
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=self.send_buffer)
        if len(self._open) >= self.max_connections and not self._evict_idle(now):
            self.counters["refused_at_cap"] += 1
            self._warn(now, "connection cap %d reached with no idle connection to close: refusing a new one",
                       self.max_connections)
            transport.abort()
            return
        self._open[id(proto)] = _Conn(proto, transport, now)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    def _evict_idle(self, now: float) -> bool:
        idle = [c for c in self._open.values() if _phase(c.proto)[0] == "head"]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.since)
        self._open.pop(id(oldest.proto), None)
        oldest.transport.abort()
        self.counters["evicted_idle"] += 1
        self._warn(now, "connection cap %d reached: closing the longest-idle connection to make room "
                   "(%d evicted so far)", self.max_connections, self.counters["evicted_idle"])
        return True

    def _sweep(self) -> None:
        self._sweeper = None
        now = self._clock()
        for key, conn in list(self._open.items()):
            phase, cycle_id = _phase(conn.proto)
            if (phase, cycle_id) != (conn.phase, conn.cycle_id):
                conn.phase, conn.cycle_id, conn.since = phase, cycle_id, now
            transport = conn.transport
            unsent = transport.get_write_buffer_size()
            draining = unsent < conn.last_unsent  # a slow reader of a big response is still reading
            conn.last_unsent = unsent
            if (unsent >= self.send_buffer or (unsent and transport.is_closing())) and not draining:
                conn.stalled_since = conn.stalled_since or now
                if now - conn.stalled_since >= self.send_timeout_s:
                    self._drop(key, conn, "stalled_writers_dropped")
                    log.info("dropped a client that read nothing for %.0fs (%d bytes unsent)", now - conn.stalled_since, unsent)
                    continue
            else:
                conn.stalled_since = None
            if phase == "head" and now - conn.since >= self.header_timeout_s:
                self._drop(key, conn, "header_timeouts")
            elif phase == "body" and now - conn.since >= self.body_timeout_s:
                self._drop(key, conn, "body_timeouts")
                log.info("closed a connection whose request body was unfinished after %.0fs", self.body_timeout_s)
        if self._open:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    def _drop(self, key: int, conn: _Conn, counter: str) -> None:
        self._open.pop(key, None)
        self.counters[counter] += 1
        conn.transport.abort()  # close() would wait to flush to a client that is not reading

    def _warn(self, now: float, message: str, *args: Any) -> None:
        if now - self._last_warn >= WARN_EVERY_S:
            self._last_warn = now
            log.warning(message, *args)
