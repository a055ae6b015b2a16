"""Public reads carry strong ETags and Cache-Control; If-None-Match answers 304 without a build;
nothing private or token-dependent is cacheable."""

from __future__ import annotations

import pytest
from starlette.routing import Route

from runtime_api.web.cache_policies import RUNTIME_POLICIES
from api.conftest import TOKEN, data_of

pytestmark = pytest.mark.anyio

PARAMS = {"trader_id": "t_001", "symbol": "600519.SH", "day_key": "2026-02-13", "interval": "1m", "limit": "50"}


async def _seed(api):
    for agent_id in ("t_001", "demo_momentum"):
        data_of(await api.control(f"/api/agents/{agent_id}/register"))
        data_of(await api.control(f"/api/agents/{agent_id}/start"))
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    data_of(await api.control("/api/agent/runtime/control", {"action": "step"}))
    data_of(await api.control("/api/agent/runtime/control", {"action": "pause"}))


def _path(template: str) -> str:
    return template.replace("{agent_id}", "t_001").replace("{trader_id}", "t_001").replace("{room_id}", "t_001")


async def test_every_public_get_revalidates_to_304(api):
    await _seed(api)
    s = api.ctx.settings
    for template, policy in RUNTIME_POLICIES.items():
        if "{file_name}" in template:
            continue
        path = _path(template)
        first = await api.get(path, params=PARAMS)
        assert first.status_code == 200, (path, first.text)
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/"), (path, etag)
        max_age = {"status": s.http_cache_status_max_age_s, "list": s.http_cache_list_max_age_s}[policy.max_age]
        assert first.headers["cache-control"] == f"public, max-age={max_age}", path
        again = await api.get(path, params=PARAMS, headers={"if-none-match": etag})
        if again.status_code == 200:  # a clock-bucketed version may roll over between the two calls
            assert again.headers["etag"] != etag, path
            again = await api.get(path, params=PARAMS, headers={"if-none-match": again.headers["etag"]})
        assert again.status_code == 304, (path, again.status_code)
        assert again.content == b"" and again.headers["etag"] and again.headers["cache-control"].startswith("public")
        prefixed = await api.get("/onlytrade" + path, params=PARAMS, headers={"if-none-match": again.headers["etag"]})
        assert prefixed.status_code in (200, 304), path


async def test_304_builds_nothing_and_a_state_change_changes_the_etag(api):
    await _seed(api)
    first = await api.get("/api/competition")
    etag = first.headers["etag"]
    cache = api.ctx.cache
    before = (cache.hits, cache.misses)
    for _ in range(5):
        assert (await api.get("/api/competition", headers={"if-none-match": f'"other", {etag}'})).status_code == 304
    assert (cache.hits, cache.misses) == before  # answered from the version alone: not even a cache lookup

    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "etag test"}))
    after = await api.get("/api/competition", headers={"if-none-match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))


async def test_trader_etags_follow_that_traders_snapshot_only(api):
    await _seed(api)
    one = (await api.get("/api/account", params={"trader_id": "t_001"})).headers["etag"]
    other = (await api.get("/api/account", params={"trader_id": "demo_momentum"})).headers["etag"]
    assert one != other  # the query is part of the tag: one trader's tag never revalidates another's body
    resp = await api.get("/api/account", params={"trader_id": "demo_momentum"}, headers={"if-none-match": one})
    assert resp.status_code == 200


async def test_body_hashed_routes(api):
    await _seed(api)
    packet = await api.get("/api/rooms/t_001/stream-packet")
    assert packet.status_code == 200 and packet.headers["cache-control"] == "public, max-age=1"
    again = await api.get("/api/rooms/t_001/stream-packet", headers={"if-none-match": packet.headers["etag"]})
    assert again.status_code in (200, 304)
    if again.status_code == 200:
        assert again.headers["etag"] != packet.headers["etag"]


async def test_private_and_control_answers_are_never_public(api):
    await _seed(api)
    for resp in (
        await api.control("/api/agent/runtime/control", {"action": "pause"}),
        await api.control("/api/agent/runtime/control", {"action": "pause"}, token="wrong-token-0123456789"),
        await api.client.get("/api/ops/audit", headers={"x-control-token": TOKEN}),
        await api.client.get("/api/ops/audit"),
        await api.get("/api/ops/live-preflight"),
        await api.get("/health"),
        await api.get("/api/account", params={"trader_id": "nobody"}),
        await api.get("/api/no-such-route"),
    ):
        assert resp.headers.get("cache-control") == "no-store", (resp.request.url, resp.headers)
        assert "etag" not in resp.headers, resp.request.url
    # a 304 is never given to a control route, whatever If-None-Match says
    resp = await api.client.post("/api/agent/runtime/control", json={"action": "pause"},
                                 headers={"x-control-token": TOKEN, "if-none-match": "*"})
    assert resp.status_code == 200


async def test_every_cached_template_is_a_public_read_route(api):
    reads = {r.path for r in api.app.routes if isinstance(r, Route) and getattr(r, "read_only", False)}
    assert set(RUNTIME_POLICIES) <= reads


async def test_avatar_files_revalidate_on_their_own_etag(tmp_path):
    import os
    from pathlib import Path

    from api.conftest import make_settings, open_api, two_agent_root

    root = two_agent_root(tmp_path, Path(__file__).resolve().parents[2])
    api, lifespan = await open_api(make_settings(root))
    try:
        first = await api.get("/api/agents/t_001/assets/avatar.jpg")
        assert first.status_code == 200 and first.headers["cache-control"] == "public, max-age=86400"
        etag = first.headers["etag"]
        assert (await api.get("/api/agents/t_001/assets/avatar.jpg", headers={"if-none-match": etag})).status_code == 304
        avatar = root / "agents" / "t_001" / "avatar.jpg"
        avatar.write_bytes(b"\xff\xd8\xff\xe0 a new picture")
        os.utime(avatar, ns=(1, 1))
        changed = await api.get("/api/agents/t_001/assets/avatar.jpg", headers={"if-none-match": etag})
        assert changed.status_code == 200 and changed.content.endswith(b"a new picture") and changed.headers["etag"] != etag
        missing = await api.get("/api/agents/t_001/assets/none.jpg")
        assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)
