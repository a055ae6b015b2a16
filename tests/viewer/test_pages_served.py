"""The viewer pages as the runtime serves them: base path per request, /onlytrade/ mount, assets, headers."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from runtime_api.app import create_app
from tests.viewer.helpers import AGENT, asgi_app, make_settings

pytestmark = pytest.mark.anyio


def base_of(html: str) -> str:
    found = re.findall(r'<base href="([^"]*)">', html)
    assert len(found) == 1, html[:400]
    return found[0]


@pytest.mark.parametrize(
    "path, prefix, base",
    [
        ("/", None, "/"),
        ("/room/demo_momentum", None, "/"),
        ("/room/demo_momentum", "/onlytrade", "/onlytrade/"),
        ("/room/demo_momentum", "/onlytrade/", "/onlytrade/"),
        ("/", "/a/b-c_d.e", "/a/b-c_d.e/"),
        ("/onlytrade/", None, "/onlytrade/"),
        ("/onlytrade/room/demo_momentum", None, "/onlytrade/"),
        ("/onlytrade/room/demo_momentum", "/onlytrade", "/onlytrade/"),
        ("/room/demo_momentum", '/x"><script>alert(1)</script>', "/"),
        ("/room/demo_momentum", "//evil.example", "/"),
        ("/room/demo_momentum", "https://evil.example/", "/"),
        ("/room/demo_momentum", "/../etc", "/"),
    ],
)
async def test_the_base_follows_the_prefix_the_page_is_served_under(root, path, prefix, base):
    async with asgi_app(make_settings(root)) as live:
        headers = {"X-Forwarded-Prefix": prefix} if prefix is not None else {}
        resp = await live.client.get(path, headers=headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert base_of(resp.text) == base
    assert "{{BASE}}" not in resp.text
    assert resp.headers["cache-control"] == "no-cache" and "X-Forwarded-Prefix" in resp.headers["vary"]


async def test_the_asgi_root_path_is_the_base_too(root):
    app = create_app(make_settings(root))
    transport = httpx.ASGITransport(app=app, root_path="/behind")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        resp = await client.get("/room/demo_momentum")
    assert base_of(resp.text) == "/behind/"


async def test_the_csp_allows_exactly_the_inline_script(root):
    async with asgi_app(make_settings(root)) as live:
        for path in ("/", f"/room/{AGENT}"):
            resp = await live.client.get(path)
            scripts = re.findall(r"<script>(.*?)</script>", resp.text, re.S)
            assert len(scripts) == 1
            digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
            csp = resp.headers["content-security-policy"]
            assert f"script-src 'self' 'sha256-{digest}'" in csp and "unsafe-inline" not in csp
            assert resp.headers["x-content-type-options"] == "nosniff"
            lowered = resp.text.lower()
            assert "token" not in lowered and "authorization" not in lowered


async def test_only_the_two_assets_are_served_with_etags(root):
    async with asgi_app(make_settings(root)) as live:
        js = await live.client.get("/static/viewer.js")
        assert js.status_code == 200 and js.headers["content-type"] == "text/javascript; charset=utf-8"
        again = await live.client.get("/static/viewer.js", headers={"If-None-Match": js.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        css = await live.client.get("/onlytrade/static/viewer.css")
        assert css.status_code == 200 and css.headers["content-type"] == "text/css; charset=utf-8"
        for path in ("/static/room.html", "/static/index.html", "/static/..%2Fapp.py", "/static/nope.js"):
            resp = await live.client.get(path)
            assert resp.status_code == 404 and resp.json()["error"] == "not_found", path


async def test_the_onlytrade_mount_serves_public_reads_and_streams_but_no_control(root):
    async with asgi_app(make_settings(root)) as live:
        await live.start_agent()
        packet = await live.client.get(f"/onlytrade/api/rooms/{AGENT}/stream-packet")
        assert packet.status_code == 200 and packet.json()["data"]["room_id"] == AGENT
        assert (await live.client.get("/onlytrade/api/competition")).json()["data"]["count"] == 1
        refused = await live.client.get("/onlytrade/api/rooms/nope/events")
        assert refused.status_code == 404 and refused.json()["error"] == "room_not_found"
        control = await live.client.post("/onlytrade/api/agent/runtime/control", json={"action": "pause"},
                                         headers={"x-control-token": "whatever"})
        assert control.status_code in (404, 405)
        assert live.ctx.runtime.paused_reason is None
        unknown = await live.client.get("/onlytrade/nothing-here")
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
