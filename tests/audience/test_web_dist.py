"""ONLYTRADE_WEB_DIST: a built front end under /onlytrade/ with production's nginx rules; avatars; badges."""

from __future__ import annotations

import pytest

from runtime_api.services import BootError

from tests.api.live_files import write_live_files

from .conftest import AGENT, app_with, assert_error, data_of, make_settings, on_air

pytestmark = pytest.mark.anyio


@pytest.fixture
def dist(tmp_path):
    folder = tmp_path / "web-dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><div id=root>spa</div>")
    (folder / "assets" / "index-abc.js").write_text("console.log('app')")
    (folder / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return folder


async def test_the_nginx_rules(root, dist):
    async with app_with(root, ONLYTRADE_WEB_DIST=str(dist)) as api:
        await on_air(api)
        client = api.client
        for path in ("/onlytrade/", "/onlytrade/lobby", "/onlytrade/room?trader=demo_momentum", "/onlytrade/stream/command-deck-new",
                     "/lobby", "/room?trader=demo_momentum", "/onlytrade/assets/missing.js"):
            resp = await client.get(path)
            assert resp.status_code == 200 and "spa" in resp.text and resp.headers["cache-control"] == "no-cache", path
        asset = await client.get("/onlytrade/assets/index-abc.js")
        assert asset.text == "console.log('app')" and "immutable" in asset.headers["cache-control"]
        assert (await client.get("/favicon.svg")).text == "<svg/>"
        for traversal in ("/onlytrade/..%2Fsecret.txt", "/onlytrade/%2e%2e/secret.txt", "/..%2Fsecret.txt"):
            assert "outside the build" not in (await client.get(traversal)).text, traversal
        # Rule 1 and 2: the API under both prefixes; unknown API paths stay JSON 404s.
        assert data_of(await client.get("/onlytrade/api/traders"))[0]["trader_id"] == AGENT
        assert data_of(await client.get("/api/traders"))[0]["trader_id"] == AGENT
        assert data_of(await client.post("/onlytrade/api/chat/session/bootstrap"))["user_session_id"]
        assert_error(await client.get("/api/nope"), 404, "not_found")
        assert_error(await client.get("/onlytrade/api/nope"), 404, "not_found")
        # The runtime's own viewer pages keep their root paths.
        lobby = await client.get("/")
        assert 'data-testid="trader-list"' in lobby.text or "viewer.js" in lobby.text
        assert "viewer.js" in (await client.get(f"/room/{AGENT}")).text
        assert (await client.get("/static/viewer.js")).status_code == 200


async def test_a_web_dist_without_index_stops_boot(root, tmp_path):
    from runtime_api.app import create_app

    (tmp_path / "empty").mkdir()
    with pytest.raises(BootError, match="ONLYTRADE_WEB_DIST"):
        create_app(make_settings(root, ONLYTRADE_WEB_DIST=str(tmp_path / "empty")))


async def test_avatar_urls_only_for_files_that_exist(root):
    (root / "agents" / "t_004" / "avatar-hd.jpg").unlink()
    async with app_with(root) as api:
        await on_air(api, "t_003", "t_004")
        rows = {r["trader_id"]: r for r in data_of(await api.get("/api/competition"))["traders"]}
        assert rows["t_003"]["avatar_url"].startswith("/api/agents/t_003/assets/avatar.jpg?v=")
        assert "avatar_hd_url" not in rows["t_004"] and rows["t_004"]["avatar_url"]
        image = await api.get(rows["t_003"]["avatar_url"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg" and len(image.content) > 10_000


async def test_side_source_status_is_a_boolean_stale(root):
    write_live_files(root)  # fresh frames, then no overview, digest or breadth file
    for name in ("market_overview.cn-a.json", "news_digest.cn-a.json", "market_breadth.cn-a.json"):
        (root / "data" / "live" / "onlytrade" / name).unlink()
    async with app_with(root, RUNTIME_DATA_MODE="live_file", AGENT_SESSION_GUARD_ENABLED="false") as api:
        data_of(await api.control(f"/api/agents/{AGENT}/register"))
        packet = data_of(await api.get(f"/api/rooms/{AGENT}/stream-packet"))
    for part in ("market_overview", "news_digest", "market_breadth"):
        status = packet[part]["status"]
        assert status["stale"] is True and status["state"] in ("missing", "unavailable"), (part, status)
        assert "file_path" not in status and "file" not in status
