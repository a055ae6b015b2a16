"""A repeat GET of a public read is answered from the answer kept for its ETag, for at most max-age."""

from __future__ import annotations

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
