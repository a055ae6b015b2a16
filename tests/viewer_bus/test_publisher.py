"""The runtime's publisher: whatever the room hub broadcasts reaches the bus (chat included,
without knowing chat), packets for every lobby room, and no bus at all without VIEWER_BUS_URL."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis.asyncio as aioredis
from api.conftest import data_of, make_settings, open_api

from runtime_api.viewer_bus import keys

from .redis_server import RedisServer, redis_binary

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(redis_binary() is None, reason="redis-server not installed")]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def _entries(client, want, timeout=10.0, after=None):
    async with asyncio.timeout(timeout):
        while True:
            entries = await client.xrange(keys.EVENTS)
            found = [(eid, f) for eid, f in entries if want(f) and (after is None or keys.parse_id(eid) > after)]
            if found:
                return found
            await asyncio.sleep(0.05)


async def test_every_hub_broadcast_and_packet_is_published(root, redis_server):
    api, lifespan = await open_api(make_settings(root, VIEWER_BUS_URL=redis_server.url))
    client = aioredis.from_url(redis_server.url)
    try:
        data_of(await api.control("/api/agents/t_001/register"))
        data_of(await api.control("/api/agents/t_001/start"))
        hub = api.ctx.extra["viewer_streams"].hub
        # an event kind this module has never heard of, in a room nobody watches on this process
        hub.publish("t_001", "chat_public_append", {"schema_version": "room.chat_public_append.v1", "text": "你好"})
        chat = await _entries(client, lambda f: f[b"event"] == b"chat_public_append")
        assert chat[0][1][b"room"] == b"t_001" and orjson.loads(chat[0][1][b"data"])["text"] == "你好"
        data_of(await api.control("/api/agent/runtime/control", {"action": "step"}))
        decision = await _entries(client, lambda f: f[b"event"] == b"decision")
        # the packet that follows the decision (the decision's refresh), whoever watches the room here
        packet = await _entries(client, lambda f: f[b"event"] == b"stream_packet" and f[b"room"] == b"t_001",
                                after=keys.parse_id(decision[0][0]))
        assert orjson.loads(packet[0][1][b"data"])["decision_latest"]
        # The stored packet is written one round trip after its stream entry (HSET needs the XADD id):
        # it catches up with the newest packet published, or passes it.
        newest = keys.parse_id(packet[-1][0])
        async with asyncio.timeout(10):
            while keys.parse_id((await client.hget(keys.PACKETS, "t_001")).split(b"\n", 1)[0]) < newest:
                await asyncio.sleep(0.02)

        async def traders_read():
            stored = await client.hget(keys.READS, "/api/traders")
            return keys.decode_read(stored) if stored else None

        # The read may first be stored as it was before t_001 was registered (boot): wait for the newer one.
        async with asyncio.timeout(10):
            while (read := await traders_read()) is None or not orjson.loads(read[2])["data"]:
                await asyncio.sleep(0.05)
        etag, cache_control, body = read
        assert cache_control.startswith("public") and orjson.loads(body)["data"][0]["trader_id"] == "t_001"
        assert len(await client.xrange(keys.EVENTS)) <= api.ctx.settings.viewer_bus_stream_maxlen + 200
        status = data_of(await api.get("/api/agent/runtime/status"))["viewer_bus"]
        assert status["enabled"] and status["connected"] and status["published"] >= 3
    finally:
        await client.aclose()
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_without_a_bus_url_nothing_changes(root):
    api, lifespan = await open_api(make_settings(root))
    try:
        assert "viewer_bus" not in api.ctx.extra
        assert not api.ctx.extra["viewer_streams"].hub.event_taps
        assert data_of(await api.get("/api/agent/runtime/status"))["viewer_bus"] == {"enabled": False}
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_the_stream_stays_bounded(root, redis_server):
    api, lifespan = await open_api(make_settings(root, VIEWER_BUS_URL=redis_server.url, VIEWER_BUS_STREAM_MAXLEN="50"))
    client = aioredis.from_url(redis_server.url)
    try:
        hub = api.ctx.extra["viewer_streams"].hub
        for i in range(2000):
            hub.publish("t_001", "chat_public_append", {"n": i})
        async with asyncio.timeout(10):
            while True:
                last = await client.xrevrange(keys.EVENTS, count=1)
                if last and orjson.loads(last[0][1][b"data"]).get("n") == 1999:
                    break
                await asyncio.sleep(0.05)
        assert await client.xlen(keys.EVENTS) < 300  # MAXLEN ~50: trimmed in whole nodes
    finally:
        await client.aclose()
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)
