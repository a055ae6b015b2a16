"""The runtime's side of the viewer bus: every room event, packet and public read, to Redis.

Events reach it through the room hub's taps, so whatever the hub broadcasts — decisions, chat,
errors — is published without this module knowing the event kinds. Packets are rebuilt for every
lobby room when its state changes (the hub's refresh taps) and on the SSE packet period, whether
or not this process has viewers. Publishing never blocks the caller: events queue (bounded) and
one task sends them in pipelined batches. While Redis is unreachable the queue holds what it can
and is flushed on reconnect; whatever overflowed is announced to every viewer as a `gap` entry,
never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

import httpx
import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..streaming.room_hub import MAX_DECISION_LIMIT
from . import keys
from .reads import edge_reads

log = logging.getLogger("onlytrade.viewer_bus")

QUEUE_LIMIT = 10_000
BATCH = 500
COALESCE_S = 0.05


def connect(url: str) -> aioredis.Redis:
    """A client that never retries behind our back: a lost connection must be seen (a restarted
    Redis has lost the history, and only a reconnect through our own code checks for that)."""
    return aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))


class BusPublisher:
    def __init__(self, ctx, app, url: str):
        s = ctx.settings
        self.ctx, self.app = ctx, app
        self.redis = connect(url)
        self.maxlen = s.viewer_bus_stream_maxlen
        self.reconnect_s = s.edge_reconnect_ms / 1000
        self.packet_interval_s = s.room_events_stream_packet_interval_ms / 1000
        self.reads_interval_s = max(0.5, float(s.http_cache_status_max_age_s))
        self.queue: deque[tuple[str, str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._packets_wake = asyncio.Event()
        self._dirty: set[str] = set()
        self._all_dirty = True
        self._read_etags: dict[str, str] = {}
        self._run_id: str | None = None
        self.connected = False
        self.published = 0
        self.overflowed = 0
        self._gap_pending = 0
        self.last_error: str | None = None
        self.last_publish_ms: int | None = None

    # ---- hub taps (never block) -------------------------------------------------------------

    def on_event(self, room_id: str, event: str, data_json: bytes) -> None:
        if len(self.queue) >= QUEUE_LIMIT:
            self.queue.popleft()
            self.overflowed += 1
            self._gap_pending += 1
        self.queue.append((room_id, event, data_json))
        self._wake.set()

    def on_refresh(self, room_id: str | None) -> None:
        if room_id is None:
            self._all_dirty = True
        else:
            self._dirty.add(room_id)
        self._packets_wake.set()

    def install(self, hub) -> None:
        hub.event_taps.append(self.on_event)
        hub.refresh_taps.append(self.on_refresh)

    def status(self) -> dict:
        return {"enabled": True, "connected": self.connected, "published": self.published, "queued": len(self.queue),
                "overflowed": self.overflowed, "last_error": self.last_error, "last_publish_ms": self.last_publish_ms}

    # ---- tasks ----------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(self._send_forever(), self._packets_forever(), self._reads_forever())

    async def close(self, flush_s: float = 2.0) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(flush_s):
                while self.queue and self.connected:
                    await self._send_batch()
        await self.redis.aclose()

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                try:
                    await self._send_batch()
                except (RedisError, OSError) as exc:
                    self._lost(exc)
                    await asyncio.sleep(self.reconnect_s)

    async def _send_batch(self) -> None:
        batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
        entries = list(batch)
        gap = self._gap_pending
        if gap:
            entries.insert(0, (keys.ALL_ROOMS, "gap", orjson.dumps({"reason": "publisher_queue_overflow", "lost_events": gap})))
        try:
            pipe = self.redis.pipeline(transaction=False)
            for room_id, event, data in entries:
                pipe.xadd(keys.EVENTS, {"room": room_id, "event": event, "data": data}, maxlen=self.maxlen, approximate=True)
            ids = await pipe.execute()
            packets = {room_id: entry_id + b"\n" + data
                       for (room_id, event, data), entry_id in zip(entries, ids, strict=True) if event == "stream_packet"}
            if packets:
                await self.redis.hset(keys.PACKETS, mapping=packets)
        except BaseException:
            self.queue.extendleft(reversed(batch))  # retried after reconnect (at least once)
            raise
        self._gap_pending -= gap
        self.published += len(entries)
        self.last_publish_ms = int(time.time() * 1000)
        if not self.connected:
            log.info("viewer bus: connected")
        self.connected, self.last_error = True, None

    def _lost(self, exc: BaseException) -> None:
        if self.connected or self.last_error is None:
            log.warning("viewer bus unreachable (%s); queueing up to %d events and retrying", exc, QUEUE_LIMIT)
        self.connected, self.last_error = False, type(exc).__name__

    async def _packets_forever(self) -> None:
        hub = self.ctx.extra["viewer_streams"].hub
        while True:
            try:
                async with asyncio.timeout(self.packet_interval_s):
                    await self._packets_wake.wait()
            except TimeoutError:
                self._all_dirty = True
            self._packets_wake.clear()
            await asyncio.sleep(COALESCE_S)  # a decision and its refresh arrive together
            lobby = self.ctx.svc.registry.lobby_ids()
            rooms = lobby if self._all_dirty else [r for r in lobby if r in self._dirty]
            self._all_dirty, self._dirty = False, set()
            for room_id in rooms:
                try:
                    body = await hub.request_packet_json(room_id, MAX_DECISION_LIMIT)
                except Exception:  # noqa: BLE001 - the hub logs build failures
                    continue
                self.on_event(room_id, "stream_packet", body)

    async def _reads_forever(self) -> None:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://viewer-bus") as client:
            while True:
                try:
                    await self._publish_reads(client)
                except (RedisError, OSError) as exc:
                    self._lost(exc)
                    self._read_etags.clear()
                await asyncio.sleep(self.reads_interval_s)

    async def _check_server(self) -> None:
        """A restarted Redis (new run_id) has lost the packets and reads: publish them all again."""
        run_id = (await self.redis.info("server")).get("run_id")
        if run_id != self._run_id:
            if self._run_id is not None:
                log.warning("viewer bus: Redis restarted (run_id changed); republishing packets and reads")
            self._run_id = run_id
            self._read_etags.clear()
            self.on_refresh(None)

    async def _publish_reads(self, client: httpx.AsyncClient) -> None:
        await self._check_server()
        changed: dict[str, bytes] = {}
        for path, query in edge_reads(self.ctx.svc.registry.lobby_ids()):
            key = keys.read_key(path, query)
            etag = self._read_etags.get(key)
            # identity: the edge stores and serves the body as it is, under the ETag of that body
            headers = {"accept-encoding": "identity", **({"if-none-match": etag} if etag else {})}
            resp = await client.get(path, params=query, headers=headers)
            if resp.status_code != 200 or "etag" not in resp.headers:
                continue
            changed[key] = keys.encode_read(resp.headers["etag"], resp.headers.get("cache-control", "no-cache"), resp.content)
        if not changed:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.READS, mapping=changed)
        for key in changed:
            pipe.xadd(keys.READS_CHANGED, {"key": key, "value": changed[key]}, maxlen=self.maxlen, approximate=True)
        await pipe.execute()
        for key, raw in changed.items():
            self._read_etags[key] = keys.decode_read(raw)[0]
