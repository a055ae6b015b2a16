"""An edge's room streams: viewers of the bus's events, with the bus's ids as SSE ids.

Every bus entry is formatted once per decision_limit in use and offered to the room's viewers
(bounded queues, slow viewers dropped, as in the runtime's own hub). Packets carry a
`viewer_bus` object saying whether this edge is connected to the bus; when it loses or regains
the bus, every viewer gets a fresh packet saying so (without an id: it is this edge's, not the
bus's). A viewer that resumes with Last-Event-ID gets what it missed from the edge's history, or
a `gap` event naming what is gone.
"""

from __future__ import annotations

import orjson

from ..streaming.admission import LEAVE_PER_TURN, Door
from ..streaming.room_hub import MAX_DECISION_LIMIT, Packet, clamp_decision_limit
from ..streaming.sse import CONNECTED, format_event
from ..streaming.viewer import StreamClosed, TooManySubscribers, Viewer, bye
from ..viewer_bus.keys import ALL_ROOMS, parse_id
from ..viewer_bus.subscriber import BusSubscriber, Entry


GAP_REPLAY_LIMIT = 32  # after a gap, at most this many events are replayed (viewer queues hold 64)


def bus_chunk(entry_id: str | None, event: str, data: bytes) -> bytes:
    chunk = format_event(None, event, data)
    return (b"id: " + entry_id.encode() + b"\n" + chunk) if entry_id else chunk


class EdgeViewer(Viewer):
    def __init__(self, rooms: EdgeRooms, room_id: str, limit: int, after: tuple[int, int] | None, opening: list[bytes]):
        super().__init__(queue_size=rooms.queue_size, keepalive_ms=rooms.keepalive_ms, max_stream_ms=rooms.max_stream_ms,
                         opening=opening, on_close=rooms._left, leave_door=rooms.leave_door)
        self.room_id, self.decision_limit, self.after = room_id, limit, after

    def offer_entry(self, key: tuple[int, int] | None, chunk: bytes) -> None:
        if key is not None and self.after is not None:
            if key <= self.after:
                return  # seen on another edge before this one caught up
            self.after = None
        self.offer(chunk)


class EdgeRooms:
    def __init__(self, bus: BusSubscriber, *, edge_name: str, keepalive_ms: int, max_stream_ms: int = 3_600_000,
                 queue_size: int = 64, max_viewers: int = 5000):
        self.bus, self.edge_name = bus, edge_name
        self.leave_door = Door(LEAVE_PER_TURN)
        self.keepalive_ms, self.max_stream_ms, self.queue_size, self.max_viewers = keepalive_ms, max_stream_ms, queue_size, max_viewers
        self.rooms: dict[str, set[EdgeViewer]] = {}
        self.viewers = 0
        self.closed = False
        self.dropped_slow_viewers = 0
        self._packets: dict[tuple[str, bool], Packet] = {}
        bus.on_entry, bus.on_state, bus.on_gap = self.on_entry, self.on_state, self.on_gap

    # ---- packets ------------------------------------------------------------------------------

    def bus_view(self) -> dict:
        s = self.bus
        return {"edge": self.edge_name, "connected": s.connected, "last_event_id": s.last_id,
                "disconnected_since_ms": s.disconnected_since_ms, "gaps": s.gaps}

    def packet(self, entry_id: str, data: bytes) -> Packet:
        """A bus packet with this edge's `viewer_bus` state, decoded and encoded once per state."""
        key = (entry_id, self.bus.connected)
        cached = self._packets.get(key)
        if cached is None:
            if len(self._packets) > 4 * max(1, len(self.bus.packets)) + 64:
                self._packets.clear()
            body = orjson.loads(data)
            if isinstance(body, dict):
                body["viewer_bus"] = self.bus_view()
            cached = self._packets[key] = Packet(MAX_DECISION_LIMIT, 0, 0.0, body, orjson.dumps(body))
        return cached

    def latest_packet(self, room_id: str, limit: int) -> tuple[str, bytes] | None:
        latest = self.bus.packets.get(room_id)
        if latest is None:
            return None
        return latest[0], self.packet(*latest).for_limit(limit)[1]

    def _chunk(self, entry: Entry, limit: int, with_id: bool = True) -> bytes:
        data = self.packet(entry.id, entry.data).for_limit(limit)[1] if entry.event == "stream_packet" else entry.data
        return bus_chunk(entry.id if with_id else None, entry.event, data)

    # ---- viewers ------------------------------------------------------------------------------

    def knows(self, room_id: str) -> bool:
        return room_id in self.bus.packets

    def subscribe(self, room_id: str, *, last_event_id: str | None, decision_limit: object) -> EdgeViewer:
        if self.closed:
            raise StreamClosed()
        if self.viewers >= self.max_viewers:
            raise TooManySubscribers()
        limit = clamp_decision_limit(decision_limit)
        after = parse_id(last_event_id)
        opening = [CONNECTED]
        if after is not None:
            missed, gap = self.bus.after(after)
            if gap is not None:
                opening.append(format_event(None, "gap", orjson.dumps({**gap, "edge": self.edge_name})))
            opening.extend(self._chunk(e, limit) for e in missed if e.room in (room_id, ALL_ROOMS))
            if missed:
                after = None
        latest = self.latest_packet(room_id, limit)
        if latest is not None:
            opening.append(bus_chunk(None, "stream_packet", latest[1]))
        viewer = EdgeViewer(self, room_id, limit, after, opening)
        self.rooms.setdefault(room_id, set()).add(viewer)
        self.viewers += 1
        return viewer

    def _left(self, viewer: Viewer) -> None:
        assert isinstance(viewer, EdgeViewer)
        room = self.rooms.get(viewer.room_id)
        if room is None or viewer not in room:
            return
        room.discard(viewer)
        self.viewers -= 1
        if viewer.close_reason == "slow_viewer":
            self.dropped_slow_viewers += 1
        if not room:
            del self.rooms[viewer.room_id]

    # ---- bus listeners ------------------------------------------------------------------------

    def on_entry(self, entry: Entry) -> None:
        targets = self.rooms.values() if entry.room == ALL_ROOMS else [self.rooms.get(entry.room, ())]
        chunks: dict[int, bytes] = {}
        for viewers in targets:
            for viewer in tuple(viewers):
                chunk = chunks.get(viewer.decision_limit)
                if chunk is None:
                    chunk = chunks[viewer.decision_limit] = self._chunk(entry, viewer.decision_limit)
                viewer.offer_entry(entry.key, chunk)

    def on_state(self, connected: bool) -> None:
        """Lost or regained the bus: every viewer sees it in a fresh packet now."""
        self._push_packets()

    def on_gap(self, info: dict, entries: list[Entry]) -> None:
        """Events were lost: say so, then send what the bus holds since (newest packet last)."""
        chunk = format_event(None, "gap", orjson.dumps({**info, "edge": self.edge_name}))
        for viewers in self.rooms.values():
            for viewer in tuple(viewers):
                viewer.after = None
                viewer.offer(chunk)
        for entry in [e for e in entries if e.event != "stream_packet"][-GAP_REPLAY_LIMIT:]:
            self.on_entry(entry)
        self._push_packets()

    def _push_packets(self) -> None:
        for room_id, viewers in self.rooms.items():
            for viewer in tuple(viewers):
                latest = self.latest_packet(room_id, viewer.decision_limit)
                if latest is not None:
                    viewer.offer(bus_chunk(None, "stream_packet", latest[1]))

    def end_streams(self, reason: str = "server_shutdown") -> None:
        self.closed = True
        farewell = bye(reason)
        for viewers in tuple(self.rooms.values()):
            for viewer in tuple(viewers):
                viewer.end(reason, farewell)
