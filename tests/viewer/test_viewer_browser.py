"""The viewer pages in a real browser (Debian's headless Chromium via Playwright) against a real server.

The lobby and a room show the agent's name and equity; a decision made by a control step appears
on the open room page without a reload; under the `/onlytrade/` prefix (the runtime's own mount,
and a prefix-stripping reverse proxy) the page opens its stream at `/onlytrade/api/rooms/<id>/events`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from tests.e2e.server import RuntimeProcess

from tests.viewer.chromium import CHROMIUM, MISSING, launched

AGENT = "demo_momentum"
NAME = "Replay Momentum (demo)"
PREFIX = "/onlytrade"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)


def data(resp: httpx.Response):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def money(value: float) -> str:
    return f"{value:,.2f}"


@pytest.fixture
def server(root) -> Iterator[RuntimeProcess]:
    env = {"AGENT_FLAT_ENTRY_ENABLED": "true", "AGENT_FLAT_ENTRY_MIN_CYCLES": "1"}
    with RuntimeProcess(root, env) as proc:
        data(proc.control("/api/replay/runtime/control", {"action": "pause"}))  # only explicit steps decide
        data(proc.control(f"/api/agents/{AGENT}/register"))
        data(proc.control(f"/api/agents/{AGENT}/start"))
        yield proc


@pytest.fixture
def browser():
    with launched() as chromium:
        yield chromium


@contextlib.contextmanager
def watched_page(browser):
    """A page that records its requests and fails the test on any script error or console error."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    problems: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("request", lambda req: requests.append(req.url))
    try:
        yield page, requests
    finally:
        page.close()
    assert problems == []


def step(server: RuntimeProcess) -> dict:
    return data(server.control("/api/agent/runtime/control", {"action": "step"}))["cycle"]["decisions"][0]


def test_lobby_and_room_show_the_agent_and_a_decision_arrives_without_a_reload(server, browser, tmp_path):
    from playwright.sync_api import expect

    with server.client() as c:
        equity = data(c.get("/api/account", params={"trader_id": AGENT}))["total_equity"]
    with watched_page(browser) as (page, requests):
        page.goto(server.base + "/")
        row = page.locator(f'[data-testid="trader-row"][data-trader-id="{AGENT}"]')
        expect(row.get_by_test_id("trader-name")).to_have_text(NAME)
        expect(row.get_by_test_id("equity")).to_have_text(money(equity))
        expect(row.get_by_test_id("running-state")).to_have_text("运行中")
        page.screenshot(path=str(tmp_path / "lobby.png"), full_page=True)

        row.get_by_test_id("trader-link").click()
        page.wait_for_url(f"**/room/{AGENT}")
        expect(page.get_by_test_id("trader-name")).to_have_text(NAME)
        expect(page.get_by_test_id("equity")).to_have_text(money(equity))
        expect(page.get_by_test_id("connection-badge")).to_have_text("实时")
        expect(page.get_by_test_id("mode-badge")).to_contain_text("REPLAY")
        expect(page.get_by_test_id("decision-item")).to_have_count(0)
        page.evaluate("window.__sameDocument = true")

        bought = None
        for n in range(1, 9):  # the demo agent's starter buy comes within a few cycles of the shipped replay
            made = step(server)["decision"]
            expect(page.get_by_test_id("decision-item")).to_have_count(min(n, 5))
            latest = page.get_by_test_id("decision-item").first
            expect(latest.get_by_test_id("decision-cycle")).to_have_text(f"#{n}")
            expect(latest.get_by_test_id("decision-symbol")).to_have_text(made["symbol"])
            expect(latest.get_by_test_id("decision-action")).to_have_text(made["action"].upper())
            expect(latest.get_by_test_id("decision-reasoning")).to_have_text(made["reasoning"])
            expect(latest.get_by_test_id("decision-step")).not_to_have_count(0)
            if made["action"] == "buy" and made["executed"]:
                bought = made
                break
        assert bought is not None, "the demo agent never bought"
        with server.client() as c:
            account = data(c.get("/api/account", params={"trader_id": AGENT}))
        assert account["total_equity"] != equity, "the buy's fee changes the equity"
        expect(page.get_by_test_id("equity")).to_have_text(money(account["total_equity"]))
        expect(page.get_by_test_id("cash")).to_have_text(money(account["available_balance"]))
        expect(page.get_by_test_id("position-row")).to_have_count(1)
        expect(page.get_by_test_id("position-symbol")).to_have_text(bought["symbol"])
        expect(page.get_by_test_id("position-quantity")).to_have_text(f"{bought['filled_quantity']:,}")
        expect(page.get_by_test_id("thinking-symbol")).to_have_text(bought["symbol"])
        assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
        assert not any("stream-packet" in url for url in requests[:3]), "the room starts on the SSE stream"
        assert any(url.endswith(f"/api/rooms/{AGENT}/events?decision_limit=5") for url in requests)
        page.screenshot(path=str(tmp_path / "room.png"), full_page=True)

    assert (tmp_path / "room.png").stat().st_size > 10_000


def test_the_runtimes_onlytrade_mount_serves_the_room_and_its_stream(server, browser):
    from playwright.sync_api import expect

    with watched_page(browser) as (page, requests):
        page.goto(f"{server.base}{PREFIX}/room/{AGENT}")
        assert page.evaluate("document.baseURI") == f"{server.base}{PREFIX}/"
        expect(page.get_by_test_id("trader-name")).to_have_text(NAME)
        expect(page.get_by_test_id("connection-badge")).to_have_text("实时")
        assert f"{server.base}{PREFIX}/api/rooms/{AGENT}/events?decision_limit=5" in requests
        decision = step(server)
        expect(page.get_by_test_id("decision-symbol").first).to_have_text(decision["decision"]["symbol"])
        expect(page.get_by_test_id("lobby-link")).to_have_attribute("href", "./")
        assert page.evaluate("document.querySelector('[data-testid=lobby-link]').href") == f"{server.base}{PREFIX}/"

        # The kill switch reaches the open page at once (a pushed packet), and so does its release.
        expect(page.get_by_test_id("kill-banner")).to_be_hidden()
        data(server.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "browser-test"}))
        expect(page.get_by_test_id("kill-banner")).to_be_visible()
        expect(page.get_by_test_id("paused-indicator")).to_have_text("已暂停")
        data(server.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
        expect(page.get_by_test_id("kill-banner")).to_be_hidden()


def prefix_proxy(upstream: str) -> Starlette:
    """A reverse proxy that serves `upstream` under /onlytrade/: strips the prefix, sends X-Forwarded-Prefix."""
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(10.0, read=None))

    async def forward(request: Request):
        path = request.url.path
        if not path.startswith(PREFIX + "/"):
            return PlainTextResponse("not proxied", status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        outgoing = client.build_request(request.method, path[len(PREFIX):], params=request.query_params,
                                        headers={**headers, "X-Forwarded-Prefix": PREFIX}, content=await request.body())
        upstream_response = await client.send(outgoing, stream=True)

        async def body():
            try:
                async for chunk in upstream_response.aiter_raw():
                    yield chunk
            finally:
                await upstream_response.aclose()

        kept = {k: v for k, v in upstream_response.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(body(), status_code=upstream_response.status_code, headers=kept)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await client.aclose()

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])], lifespan=lifespan)


@contextlib.contextmanager
def serve_in_thread(app: Starlette) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio", lifespan="on",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="prefix-proxy", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the proxy did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_behind_a_prefix_stripping_proxy_the_stream_connects_under_the_prefix(server, browser, tmp_path):
    from playwright.sync_api import expect

    with serve_in_thread(prefix_proxy(server.base)) as proxy, watched_page(browser) as (page, requests):
        page.goto(f"{proxy}{PREFIX}/room/{AGENT}")
        assert page.evaluate("document.baseURI") == f"{proxy}{PREFIX}/"
        expect(page.get_by_test_id("trader-name")).to_have_text(NAME)
        expect(page.get_by_test_id("connection-badge")).to_have_text("实时")
        assert f"{proxy}{PREFIX}/api/rooms/{AGENT}/events?decision_limit=5" in requests
        assert all(url.startswith(f"{proxy}{PREFIX}/") for url in requests if url.startswith("http"))
        decision = step(server)
        expect(page.get_by_test_id("decision-symbol").first).to_have_text(decision["decision"]["symbol"])
        page.screenshot(path=str(tmp_path / "room-behind-proxy.png"), full_page=True)
