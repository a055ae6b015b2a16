"""Room broadcaster: one per room, whatever the number of viewers.

Every event is serialised once and its bytes fanned out to bounded per-viewer queues, so the
cost of an event does not grow with the audience and a slow viewer is dropped, never waited
for. The periodic `stream_packet` is built once per tick per room (at the largest
`decision_limit` among its viewers) on a server-chosen interval: a viewer cannot make the
room build faster (W19). Builds are single-flight per room, briefly cached, and invalidated
by a new decision, so a herd of viewers refetching after a decision costs one build; `refresh`
pushes a fresh packet to a room's viewers when its state changes (a decision, the kill switch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runtime_api.web.responses import to_json
from runtime_api.streaming.admission import LEAVE_PER_TURN, Door
from runtime_api.streaming.sse import CONNECTED, format_event
from runtime_api.streaming.viewer import StreamClosed, TooManySubscribers, Viewer, bye

log = logging.getLogger(__name__)

DEFAULT_DECISION_LIMIT = 5
MAX_DECISION_LIMIT = 20

BuildPacket = Callable[[str, int], Awaitable[dict[str, Any]]]


def clamp_decision_limit(value: object, default: int = DEFAULT_DECISION_LIMIT) -> int:
    """`decision_limit` as the Node runtime reads it: a number clamped to 1..20, else the default."""
    try:
        number = int(float(value)) if value not in (None, "") else default  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = default
    return max(1, min(MAX_DECISION_LIMIT, number))


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Packet:
    """One built packet and its JSON, serialised once (and once more per smaller limit asked for)."""

    limit: int
    generation: int
    built_at: float
    data: dict[str, Any]
    json: bytes
    _sliced: dict[int, tuple[dict[str, Any], bytes]] = field(default_factory=dict)

    def for_limit(self, limit: int) -> tuple[dict[str, Any], bytes]:
        decisions = self.data.get("decisions_latest")
        if limit >= self.limit or not isinstance(decisions, list) or len(decisions) <= limit:
            return self.data, self.json
        if limit not in self._sliced:
            data = {**self.data, "decisions_latest": decisions[:limit]}
            self._sliced[limit] = (data, to_json(data))
        return self._sliced[limit]


@dataclass
class _Flight:
    limit: int
    generation: int
    task: asyncio.Task[Packet]


@dataclass
class _Room:
    room_id: str
    buffer: deque[tuple[int, bytes]]
    last_id: int = 0
    packet_entry: tuple[int, bytes] | None = None
    viewers: set[RoomSubscription] = field(default_factory=set)
    limit_counts: list[int] = field(default_factory=lambda: [0] * (MAX_DECISION_LIMIT + 1))
    left_at_ms: int | None = None
    ticker: asyncio.Task[None] | None = None
    pusher: asyncio.Task[None] | None = None
    push_requested: bool = False
    expiry: asyncio.TimerHandle | None = None
    flight: _Flight | None = None
    cache: Packet | None = None
    generation: int = 0
    builds: int = 0
    build_failures: int = 0
    joined_builds: int = 0
    cache_hits: int = 0
    timer_ticks: int = 0
    skipped_builds: int = 0
    dropped_slow_viewers: int = 0
    events_published: int = 0
    events_unrecorded: int = 0

    def max_limit(self) -> int:
        for limit in range(MAX_DECISION_LIMIT, 0, -1):
            if self.limit_counts[limit]:
                return limit
        return 0


class RoomSubscription(Viewer):
    """One viewer of one room: `: connected`, the replay, an initial `stream_packet`, then live events."""

    def __init__(self, hub: RoomHub, room: _Room, *, decision_limit: int, packet_id: int, opening: list[bytes]):
        super().__init__(queue_size=hub.queue_size, keepalive_ms=hub.keepalive_ms,
                         max_stream_ms=hub.max_stream_ms, opening=opening, on_close=hub._viewer_left,
                         leave_door=hub.leave_door)
        self.room_id = room.room_id
        self.decision_limit = decision_limit
        self.packet_id = packet_id
        self._hub = hub
        self._room = room

    async def start(self) -> bytes | None:
        try:
            # Built at the room's largest limit, so viewers arriving together share one build.
            packet = await self._hub._packet(self._room, max(self.decision_limit, self._room.max_limit()))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return None  # the build was cancelled by close(), not this viewer
        except Exception as exc:  # reported to the viewer as an `error` event
            return format_event(None, "error", to_json({"error": _error_code(exc)}))
        return format_event(self.packet_id, "stream_packet", packet.for_limit(self.decision_limit)[1])


class RoomHub:
    """Per-room SSE broadcasters, replay buffers and single-flight packet builds."""

    def __init__(self, *, build_packet: BuildPacket, buffer_size: int = 200, buffer_ttl_ms: int = 60_000,
                 packet_interval_ms: int = 15_000, keepalive_ms: int = 15_000, queue_size: int = 64,
                 max_subscribers: int = 1000, max_stream_ms: int = 3_600_000, packet_cache_ms: int = 1000,
                 build_timeout_ms: int = 15_000, max_concurrent_builds: int = 1,
                 now_ms: Callable[[], int] = wall_ms):
        self._build_packet = build_packet
        self.buffer_size = buffer_size
        self.buffer_ttl_ms = buffer_ttl_ms
        self.packet_interval_ms = packet_interval_ms
        self.keepalive_ms = keepalive_ms
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.max_stream_ms = max_stream_ms
        self.packet_cache_ms = packet_cache_ms
        self.build_timeout_ms = build_timeout_ms
        self._build_slots = asyncio.Semaphore(max_concurrent_builds)
        self.leave_door = Door(LEAVE_PER_TURN)
        self._now_ms = now_ms
        self._rooms: dict[str, _Room] = {}
        self._subscribers = 0
        self._closed = False
        self.builds_running = 0
        self.max_builds_running = 0
        self.builds_started = 0
        # Observers of everything the hub broadcasts, whether or not this process has viewers
        # for the room (the viewer bus): (room_id, event, data_json) and refresh(room_id | None).
        self.event_taps: list[Callable[[str, str, bytes], None]] = []
        self.refresh_taps: list[Callable[[str | None], None]] = []

    @classmethod
    def from_settings(cls, settings: Any, *, build_packet: BuildPacket, **overrides: Any) -> RoomHub:
        """A hub configured from the ROOM_EVENTS_* settings."""
        options = {
            "buffer_size": settings.room_events_buffer_size,
            "buffer_ttl_ms": settings.room_events_buffer_ttl_ms,
            "packet_interval_ms": settings.room_events_stream_packet_interval_ms,
            "keepalive_ms": settings.room_events_keepalive_ms,
            "max_stream_ms": settings.sse_max_stream_ms,
        }
        return cls(build_packet=build_packet, **{**options, **overrides})

    # ---- viewers ------------------------------------------------------------------------------

    def subscribe(self, room_id: str, *, last_event_id: int | None = None,
                  decision_limit: int = DEFAULT_DECISION_LIMIT) -> RoomSubscription:
        """A new viewer; the caller has validated the room. Iterate it to the end or `aclose()` it."""
        if self._closed:
            raise StreamClosed()
        if self._subscribers >= self.max_subscribers:
            raise TooManySubscribers()
        limit = clamp_decision_limit(decision_limit)
        room = self._room(room_id)
        if room.expiry is not None:
            room.expiry.cancel()
            room.expiry = None
        self._drop_expired_buffer(room)
        opening = [CONNECTED]
        if last_event_id is not None:
            # An id this room never issued comes from a previous process: replay everything held.
            after = last_event_id if last_event_id <= room.last_id else -1
            opening.extend(chunk for event_id, chunk in room.buffer if event_id > after)
        room.last_id += 1  # the initial packet's id: sent to this viewer only, never buffered
        viewer = RoomSubscription(self, room, decision_limit=limit, packet_id=room.last_id, opening=opening)
        room.viewers.add(viewer)
        room.limit_counts[limit] += 1
        room.left_at_ms = None
        self._subscribers += 1
        if room.ticker is None:
            room.ticker = asyncio.create_task(self._tick(room), name=f"room-packets:{room_id}")
        return viewer

    def _viewer_left(self, viewer: Viewer) -> None:
        assert isinstance(viewer, RoomSubscription)
        room = viewer._room
        if viewer not in room.viewers:
            return
        room.viewers.discard(viewer)
        room.limit_counts[viewer.decision_limit] -= 1
        self._subscribers -= 1
        if viewer.close_reason == "slow_viewer":
            room.dropped_slow_viewers += 1
        if room.viewers:
            return
        if room.ticker is not None:
            room.ticker.cancel()
            room.ticker = None
        room.left_at_ms = self._now_ms()
        if not self._closed:
            room.expiry = asyncio.get_running_loop().call_later(
                self.buffer_ttl_ms / 1000, self._drop_expired_buffer, room)

    # ---- events -------------------------------------------------------------------------------

    def publish(self, room_id: str, event: str, data: Any) -> int | None:
        """Record and fan out one event; returns its id, or None when the room has no live buffer."""
        data_json = to_json(data)
        for tap in self.event_taps:
            tap(room_id, event, data_json)
        room = self._rooms.get(room_id)
        if room is None or self._closed:
            return None
        return self._publish_json(room, event, data_json)

    def publish_decision(self, room_id: str, decision: dict[str, Any],
                         decision_meta: dict[str, Any] | None = None) -> int | None:
        """Announce an agent decision (`room.decision_event.v1`); it also invalidates the cached packet."""
        self.invalidate(room_id)
        return self.publish(room_id, "decision", {
            "schema_version": "room.decision_event.v1",
            "room_id": room_id,
            "ts_ms": self._now_ms(),
            "decision": decision,
            "decision_meta": decision_meta,
        })

    def invalidate(self, room_id: str | None = None) -> None:
        """The room's state changed: the next packet request builds afresh (None: every room)."""
        rooms = self._rooms.values() if room_id is None else filter(None, [self._rooms.get(room_id)])
        for room in rooms:
            room.generation += 1
            room.cache = None

    def refresh(self, room_id: str | None = None) -> None:
        """The room's state changed (None: every room): rebuild its packet and push it to its viewers soon.

        Pushes are coalesced per room: a change during a push's build makes it build once more.
        """
        self.invalidate(room_id)
        for tap in self.refresh_taps:
            tap(room_id)
        if self._closed:
            return
        rooms = self._rooms.values() if room_id is None else filter(None, [self._rooms.get(room_id)])
        for room in rooms:
            if not room.viewers:
                continue
            room.push_requested = True
            if room.pusher is None:
                room.pusher = asyncio.create_task(self._push(room), name=f"room-push:{room.room_id}")

    async def _push(self, room: _Room) -> None:
        try:
            while room.push_requested:
                room.push_requested = False
                await self._broadcast_packet(room)
        finally:
            room.pusher = None

    async def push_packet(self, room_id: str) -> int | None:
        """Build and broadcast a `stream_packet` now (e.g. after a kill switch), if anyone watches."""
        room = self._rooms.get(room_id)
        if room is None or not room.viewers:
            return None
        return await self._broadcast_packet(room)

    def _publish_json(self, room: _Room, event: str, data_json: bytes) -> int | None:
        if self._drop_expired_buffer(room):
            room.events_unrecorded += 1
            return None
        room.last_id += 1
        entry = (room.last_id, format_event(room.last_id, event, data_json))
        if event == "stream_packet":
            # A packet supersedes the previous one: keep only the newest in the replay buffer.
            if room.packet_entry is not None and room.packet_entry in room.buffer:
                room.buffer.remove(room.packet_entry)
            room.packet_entry = entry
        room.buffer.append(entry)
        room.events_published += 1
        for viewer in tuple(room.viewers):
            viewer.offer(entry[1])
        return room.last_id

    def _buffer_live(self, room: _Room) -> bool:
        if room.viewers:
            return True
        return room.left_at_ms is not None and self._now_ms() - room.left_at_ms < self.buffer_ttl_ms

    def _drop_expired_buffer(self, room: _Room) -> bool:
        """Free the replay buffer once nobody has watched for the TTL; True when it is not live."""
        if self._buffer_live(room):
            return False
        room.buffer.clear()
        room.packet_entry = None
        room.left_at_ms = None
        return True

    # ---- packets ------------------------------------------------------------------------------

    async def request_packet(self, room_id: str, decision_limit: int = DEFAULT_DECISION_LIMIT) -> dict[str, Any]:
        """The room's packet for the HTTP endpoint, sharing in-flight and just-built packets."""
        limit = clamp_decision_limit(decision_limit)
        return (await self._packet(self._room(room_id), limit)).for_limit(limit)[0]

    async def request_packet_json(self, room_id: str, decision_limit: int = DEFAULT_DECISION_LIMIT) -> bytes:
        """As `request_packet`, already serialised (wrap it with `responses.ok_bytes`)."""
        limit = clamp_decision_limit(decision_limit)
        return (await self._packet(self._room(room_id), limit)).for_limit(limit)[1]

    async def _tick(self, room: _Room) -> None:
        while True:
            await asyncio.sleep(self.packet_interval_ms / 1000)
            room.timer_ticks += 1
            await self._broadcast_packet(room, from_timer=True)

    async def _broadcast_packet(self, room: _Room, *, from_timer: bool = False) -> int | None:
        limit = room.max_limit()
        if not limit:
            return None
        try:
            packet = await self._packet(room, limit, from_timer=from_timer)
        except Exception as exc:  # viewers get an `error` event, operators a log line (_build)
            return self._publish_json(room, "error", to_json({"error": _error_code(exc)}))
        return self._publish_json(room, "stream_packet", packet.json)

    async def _packet(self, room: _Room, limit: int, *, from_timer: bool = False) -> Packet:
        loop = asyncio.get_running_loop()
        while True:
            flight = room.flight
            if flight is not None:
                if flight.limit >= limit and flight.generation == room.generation:
                    room.joined_builds += 1
                    room.skipped_builds += from_timer
                    return await asyncio.shield(flight.task)
                await asyncio.wait([flight.task])  # a smaller or stale build: let it land, then rebuild
                continue
            cached = self._fresh(room, limit, loop.time())
            if cached is not None:
                room.cache_hits += 1
                room.skipped_builds += from_timer
                return cached
            task = asyncio.create_task(self._build(room, limit, room.generation), name=f"room-build:{room.room_id}")
            task.add_done_callback(_retrieve)
            room.flight = _Flight(limit, room.generation, task)
            return await asyncio.shield(task)

    def _fresh(self, room: _Room, limit: int, now: float) -> Packet | None:
        """The room's cached packet if a request for `limit` is answered from it now (no build)."""
        cached = room.cache
        if (cached is not None and cached.limit >= limit and cached.generation == room.generation
                and (now - cached.built_at) * 1000 < self.packet_cache_ms):
            return cached
        return None

    def packet_version(self, room_id: str, decision_limit: int) -> tuple | None:
        """What the stream-packet read would answer from right now, without a build: a version for
        its ETag (the HTTP cache then keeps the answer), or None when a build is due."""
        room = self._rooms.get(room_id)
        if room is None:
            return None
        packet = self._fresh(room, clamp_decision_limit(decision_limit), asyncio.get_running_loop().time())
        return None if packet is None else (room_id, packet.generation, packet.built_at)

    async def _build(self, room: _Room, limit: int, generation: int) -> Packet:
        try:
            async with self._build_slots:
                room.builds += 1
                self.builds_started += 1
                self.builds_running += 1
                self.max_builds_running = max(self.max_builds_running, self.builds_running)
                try:
                    async with asyncio.timeout(self.build_timeout_ms / 1000):
                        data = await self._build_packet(room.room_id, limit)
                finally:
                    self.builds_running -= 1
            packet = Packet(limit, generation, asyncio.get_running_loop().time(), data, to_json(data))
            if generation == room.generation:
                room.cache = packet
            return packet
        except Exception:
            room.build_failures += 1
            log.exception("room %s: stream packet build failed", room.room_id)
            raise
        finally:
            if room.flight is not None and room.flight.task is asyncio.current_task():
                room.flight = None

    # ---- bookkeeping ----------------------------------------------------------------------------

    def _room(self, room_id: str) -> _Room:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = _Room(room_id=room_id, buffer=deque(maxlen=self.buffer_size))
        return room

    def stats(self, room_id: str | None = None) -> dict[str, Any] | None:
        """One room's counters (None when the hub holds no state for it), or hub totals."""
        if room_id is None:
            return {"rooms": len(self._rooms), "subscribers": self._subscribers,
                    "max_subscribers": self.max_subscribers, "closed": self._closed,
                    "builds_started": self.builds_started, "builds_running": self.builds_running,
                    "max_builds_running": self.max_builds_running}
        room = self._rooms.get(room_id)
        if room is None:
            return None
        return {
            "room_id": room.room_id,
            "subscribers": len(room.viewers),
            "decision_limit": room.max_limit(),
            "timer_running": room.ticker is not None,
            "timer_ticks": room.timer_ticks,
            "builds": room.builds,
            "build_failures": room.build_failures,
            "build_in_flight": room.flight is not None,
            "joined_builds": room.joined_builds,
            "cache_hits": room.cache_hits,
            "skipped_builds": room.skipped_builds,
            "dropped_slow_viewers": room.dropped_slow_viewers,
            "buffered_events": len(room.buffer),
            "last_event_id": room.last_id,
            "events_published": room.events_published,
            "events_unrecorded": room.events_unrecorded,
        }

    def end_streams(self, reason: str = "server_shutdown") -> None:
        """Refuse new viewers and end every stream with a `bye` (call before the server drains)."""
        self._closed = True
        farewell = bye(reason)
        for room in self._rooms.values():
            for viewer in tuple(room.viewers):
                viewer.end(reason, farewell)

    async def close(self) -> None:
        """End every stream and stop every timer and build (shutdown)."""
        tasks = [task for room in self._rooms.values()
                 for task in (room.ticker, room.pusher, room.flight and room.flight.task) if task is not None]
        self.end_streams()
        for room in self._rooms.values():
            if room.expiry is not None:
                room.expiry.cancel()
                room.expiry = None
            room.ticker = None
            room.pusher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _error_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else "stream_packet_failed"


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Joiners may all have gone away; the outcome is logged in _build, never "never retrieved".
    if not task.cancelled():
        task.exception()
