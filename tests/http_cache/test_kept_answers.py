"""A repeat GET of a public read is answered from the answer kept for its ETag, for at most max-age."""

from __future__ import annotations

import threading

import anyio
import pytest

from api.conftest import data_of, make_settings, open_api
from tests.conftest import middleware_of

pytestmark = pytest.mark.anyio


def _http_cache(app):
    return middleware_of(app, "HttpCache")


async def test_a_repeat_read_skips_the_route_and_gets_the_same_bytes(api):
    first = await api.get("/api/competition")
    cache = api.ctx.cache
    before = (cache.hits, cache.misses)
    http_cache = _http_cache(api.app)
    for _ in range(5):
        again = await api.get("/api/competition")
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
        assert again.headers["x-request-id"] != first.headers["x-request-id"]  # per request, not kept
    assert (cache.hits, cache.misses) == before  # the route was not even called
    assert http_cache.response_hits >= 5


async def test_a_state_change_is_seen_at_once(api):
    first = await api.get("/api/competition")
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "kept answers"}))
    after = await api.get("/api/competition")
    assert after.headers["etag"] != first.headers["etag"]
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))


async def test_identity_and_gzip_answers_are_kept_apart(api):
    params = {"symbol": "600519.SH", "interval": "1m", "limit": "500"}
    plain = await api.get("/api/market/frames", params=params, headers={"accept-encoding": "identity"})
    packed = await api.get("/api/market/frames", params=params, headers={"accept-encoding": "gzip"})
    plain_again = await api.get("/api/market/frames", params=params, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and "content-encoding" not in plain_again.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert plain.content == packed.content == plain_again.content  # httpx inflates the gzip body


async def test_errors_and_heads_are_never_kept(api):
    for _ in range(3):
        missing = await api.get("/api/account", params={"trader_id": "nobody"})
        assert missing.status_code == 404
        head = await api.client.head("/api/competition")
        assert head.status_code == 200 and head.content == b""
    full = await api.get("/api/competition")
    assert full.content  # a HEAD never stood in for a GET


async def test_max_age_zero_keeps_nothing(root):
    handle, lifespan = await open_api(make_settings(root, HTTP_CACHE_LIST_MAX_AGE_S="0"))
    try:
        for _ in range(3):
            assert (await handle.get("/api/competition")).status_code == 200
        assert _http_cache(handle.app).response_hits == 0
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_the_room_packet_is_kept_while_the_hub_holds_it_fresh(api):
    """The packet's version is the hub's fresh build: repeats skip the route; a change in the
    room (invalidate, as a decision does) gives a new ETag at once."""
    data_of(await api.control("/api/agents/t_001/register"))
    hub = api.ctx.extra["viewer_streams"].hub
    path = "/api/rooms/t_001/stream-packet"
    assert (await api.get(path)).status_code == 200  # the first build: no fresh packet yet, so its ETag was hashed from the body
    second = await api.get(path)  # now answered from the hub's fresh packet, and kept
    route_calls = hub.stats("t_001")["cache_hits"]
    for _ in range(5):
        again = await api.get(path)
        assert again.content == second.content and again.headers["etag"] == second.headers["etag"]
    assert hub.stats("t_001")["cache_hits"] == route_calls  # the route was not called again
    assert (await api.get(path, headers={"if-none-match": second.headers["etag"]})).status_code == 304
    hub.invalidate("t_001")
    changed = await api.get(path, headers={"if-none-match": second.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != second.headers["etag"]
    for bad in ("/api/rooms/t_999/stream-packet", "/api/rooms/..%2F/stream-packet"):
        resp = await api.get(bad)
        assert resp.status_code in (400, 404) and resp.headers["cache-control"] == "no-store"


class HeldBuild:
    """The frames route's build, held in its worker thread until `release()`."""

    def __init__(self, market):
        self.entered, self._go = threading.Event(), threading.Event()
        real = market.get_frames

        def held(*args, **kwargs):
            self.entered.set()
            self._go.wait(10)
            return real(*args, **kwargs)

        self.get_frames = held

    async def started(self) -> None:
        while not self.entered.is_set():
            await anyio.sleep(0.005)

    def release(self) -> None:
        self._go.set()


async def test_a_read_asked_while_its_new_answer_builds_gets_the_answer_it_replaces(api, monkeypatch):
    """The herd behind a state change: one request builds, the others are answered at once with
    the previous answer (younger than max-age), never with a stale one older than that."""
    params = {"symbol": "600519.SH", "interval": "1m", "limit": "50"}
    first = await api.get("/api/market/frames", params=params)
    build = HeldBuild(api.ctx.svc.market)
    monkeypatch.setattr(api.ctx.svc.market, "get_frames", build.get_frames)
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "herd"}))
    http_cache = _http_cache(api.app)
    results = {}

    async def rebuild():
        results["new"] = await api.get("/api/market/frames", params=params)

    async with anyio.create_task_group() as tg:
        tg.start_soon(rebuild)
        await build.started()
        during = await api.get("/api/market/frames", params=params)
        revalidated = await api.get("/api/market/frames", params=params, headers={"if-none-match": first.headers["etag"]})
        build.release()
    assert during.status_code == 200 and during.content == first.content
    assert during.headers["etag"] == first.headers["etag"]  # the answer it is, with its own ETag
    assert revalidated.status_code == 304
    assert http_cache.previous_answers == 2
    assert results["new"].headers["etag"] != first.headers["etag"]
    after = await api.get("/api/market/frames", params=params)
    assert after.headers["etag"] == results["new"].headers["etag"]  # the rebuild is the newest now
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
    counters = data_of(await api.get("/api/agent/runtime/status"))["response_cache"]
    assert counters["previous_answers"] == 2 and counters["kept_answers"] >= 1 and counters["rebuilds"] >= 2


async def test_the_answer_being_replaced_is_never_older_than_max_age(api, monkeypatch):
    params = {"symbol": "600519.SH", "interval": "1m", "limit": "40"}
    first = await api.get("/api/market/frames", params=params)
    build = HeldBuild(api.ctx.svc.market)
    http_cache = _http_cache(api.app)
    for key, (kept_at, headers, body) in list(http_cache._responses.items()):
        http_cache._responses[key] = (kept_at - 60, headers, body)  # kept a minute ago: past any max-age
    monkeypatch.setattr(api.ctx.svc.market, "get_frames", build.get_frames)
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "old"}))
    done = []

    async def read():
        done.append((await api.get("/api/market/frames", params=params)).headers["etag"])

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)  # the rebuild
        await build.started()
        tg.start_soon(read)  # no answer young enough to stand in: it waits for the build
        await anyio.sleep(0.05)
        assert done == [] and http_cache.previous_answers == 0
        build.release()
    assert len(done) == 2 and done[0] == done[1] != first.headers["etag"]
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
    assert (await api.get("/api/market/frames", params=params)).headers["etag"] != first.headers["etag"]
