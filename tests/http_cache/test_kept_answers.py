"""A repeat GET of a public read is answered from the answer kept for its ETag, for at most max-age."""

from __future__ import annotations

import asyncio

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


async def test_a_new_version_replaces_the_answer_kept_for_its_url(api):
    """Kept answers are one per URL, not one per version: a read whose state keeps moving (frames
    under a fast replay) would otherwise hold every past body until the byte cap."""
    etags = set()
    for n in range(4):
        action = "activate" if n % 2 == 0 else "deactivate"
        data_of(await api.control("/api/agent/runtime/kill-switch", {"action": action, "reason": "versions"}))
        etags.add((await api.get("/api/competition")).headers["etag"])
        assert (await api.get("/api/competition")).headers["etag"] in etags  # the kept answer
    assert len(etags) >= 3  # each toggle was a new version
    http_cache = _http_cache(api.app)
    kept = [key for key in http_cache._responses if key[0] == "/api/competition"]
    assert len(kept) == 1
    assert http_cache._response_bytes == sum(len(entry[3]) for entry in http_cache._responses.values())


async def test_concurrent_misses_for_one_url_join_the_first_instead_of_each_taking_the_whole_way(api):
    """After a state change every waiting viewer misses at once; one request goes through the app
    and the rest get its kept answer (the same bytes, their own request ids)."""
    params = {"symbol": "600519.SH", "interval": "1m", "limit": "500"}
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    await api.get("/api/competition")  # builds the middleware stack
    http_cache = _http_cache(api.app)
    misses, joins = http_cache.response_misses, http_cache.response_joins
    answers = await asyncio.gather(*(api.get("/api/market/frames", params=params) for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1 and len({a.headers["etag"] for a in answers}) == 1
    assert len({a.headers["x-request-id"] for a in answers}) == 20
    assert http_cache.response_misses == misses + 1
    assert http_cache.response_joins == joins + 19
    assert not http_cache._flights  # nothing left behind


async def test_requests_that_joined_a_failing_one_get_their_own_answer(api):
    params = {"symbol": "NOT-A-SYMBOL", "interval": "1m"}
    answers = await asyncio.gather(*(api.get("/api/market/frames", params=params) for _ in range(10)))
    assert len({a.status_code for a in answers}) == 1 and answers[0].status_code in (400, 404)
    assert {a.json()["success"] for a in answers} == {False}
    assert not _http_cache(api.app)._flights
