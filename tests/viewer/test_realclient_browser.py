"""The original React front end (its production build) against a real runtime, in Debian's Chromium.

The runtime serves the build itself (`ONLYTRADE_WEB_DIST`, production's nginx rules) on the
shipped replay data. Through the lobby, the leaderboard, a room and the stream page of a trading
agent: every API response is 2xx, no page error, the room's agent chat arrives over SSE, the
bet board is OPEN with every lobby trader, avatars load, the stream page's badges read fresh/stale.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import RuntimeProcess

from tests.viewer.chromium import CHROMIUM, MISSING, launched

REPO = Path(__file__).resolve().parents[2]
DIST = REPO.parent / "shared" / "realclient" / "onlytrade-web-dist"
AGENT = "demo_momentum"
LOBBY = ("demo_momentum", "t_001", "t_003", "t_004")
OUTSIDE = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")

pytestmark = [
    pytest.mark.skipif(not (DIST / "index.html").is_file(),
                       reason=f"the real client build is not here ({DIST}): the shared folder is missing"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING),
]


def data(resp: httpx.Response):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("realclient")
    shutil.copytree(REPO / "agents", root / "agents")
    shutil.copytree(REPO / "data" / "replay", root / "data" / "replay")
    env = {"ONLYTRADE_WEB_DIST": str(DIST), "AGENT_FLAT_ENTRY_ENABLED": "true", "AGENT_FLAT_ENTRY_MIN_CYCLES": "1",
           "CHAT_DECISION_NARRATION_HOLD_INTERVAL_MS": "5000", "CHAT_DECISION_NARRATION_MIN_INTERVAL_MS": "5000"}
    with RuntimeProcess(root, env) as proc:
        # The replay clock stays at the warm-up cursor (before 14:30 on a trading day): the board is open.
        data(proc.control("/api/replay/runtime/control", {"action": "pause"}))
        for agent in LOBBY:
            data(proc.control(f"/api/agents/{agent}/register"))
            data(proc.control(f"/api/agents/{agent}/start"))
        yield proc


@pytest.fixture(scope="module")
def browser():
    with launched() as chromium:
        yield chromium


class Watch:
    """Every API response, page error and console error of one page; outside requests are blocked."""

    def __init__(self):
        self.api: list[tuple[int, str]] = []
        self.problems: list[str] = []
        self.bodies: dict[str, list] = {}

    def on_response(self, response) -> None:
        if "/api/" in response.url:
            self.api.append((response.status, response.url))
            if "/api/bets/market" in response.url and response.status == 200:
                self.bodies.setdefault("bets", []).append(response.json()["data"])

    def on_console(self, msg) -> None:
        # Blocked outside resources (a CDN background image) are the only console errors allowed.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource: net::ERR_FAILED"):
            self.problems.append(f"console: {msg.text}")

    def requests(self, fragment: str) -> int:
        return sum(1 for _, url in self.api if fragment in url)


@contextlib.contextmanager
def open_page(browser, server, path: str, shots: Path, name: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    context.route(OUTSIDE, lambda route: route.abort())
    page = context.new_page()
    watch = Watch()
    page.on("response", watch.on_response)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda exc: watch.problems.append(f"pageerror: {exc}"))
    page.on("requestfailed", lambda req: None if OUTSIDE.match(req.url) else watch.problems.append(f"failed: {req.url}"))
    try:
        page.goto(server.base + path)
        yield page, watch
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    finally:
        context.close()
    failed = [(status, url) for status, url in watch.api if not 200 <= status < 300]
    assert failed == [], failed
    assert watch.problems == []
    assert watch.api, "the page called no API"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("realclient-shots")


def names(server) -> dict[str, str]:
    with server.client() as c:
        return {t["trader_id"]: t["trader_name"] for t in data(c.get("/api/traders"))}


def avatars_loaded(page) -> list[str]:
    """The avatar images on the page that loaded (fails on a broken one), once every one has finished
    loading: lazy images may still be in flight when the panel that holds them is already visible."""
    page.wait_for_function("""() => [...document.images].filter(i => i.src.includes('/assets/avatar')).every(i => i.complete)""")
    images = page.evaluate("""() => [...document.images].filter(i => i.src.includes('/assets/avatar'))
        .map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}))""")
    broken = [i["src"] for i in images if not i["ok"]]
    assert broken == [], broken
    return [i["src"] for i in images]


def test_lobby_and_leaderboard(server, browser, shots):
    from playwright.sync_api import expect

    traders = names(server)
    with open_page(browser, server, "/onlytrade/lobby", shots, "lobby") as (page, watch):
        expect(page.get_by_test_id("page-lobby")).to_be_visible()
        for agent in LOBBY:
            expect(page.get_by_text(traders[agent], exact=True).first).to_be_visible()
        page.wait_for_function("""() => [...document.images].filter(i => i.src.includes('/assets/avatar')).length >= 2
            && [...document.images].filter(i => i.src.includes('/assets/avatar')).every(i => i.complete)""")
        loaded = avatars_loaded(page)
        assert any("/api/agents/t_003/assets/avatar" in src for src in loaded)
        assert any("/api/agents/t_004/assets/avatar" in src for src in loaded)
        assert watch.requests("/api/competition") >= 1
    with open_page(browser, server, "/onlytrade/leaderboard", shots, "leaderboard") as (page, watch):
        expect(page.get_by_test_id("page-leaderboard")).to_be_visible()
        for agent in LOBBY:
            expect(page.get_by_text(traders[agent]).first).to_be_visible()
        avatars_loaded(page)


def test_room_chat_arrives_over_sse_and_the_bet_board_is_open(server, browser, shots):
    from playwright.sync_api import expect

    traders = names(server)
    with open_page(browser, server, f"/onlytrade/room?trader={AGENT}", shots, "room") as (page, watch):
        expect(page.get_by_test_id("trader-dashboard")).to_be_visible()
        expect(page.get_by_text("SSE: connected")).to_be_visible(timeout=15_000)
        expect(page.get_by_text("Daily Bet Board", exact=True)).to_be_visible()
        # The room loads its chat once after the session bootstrap; count from there (a loaded machine
        # can show the board before that first load has answered).
        for _ in range(150):
            if watch.requests(f"/api/chat/rooms/{AGENT}/public"):
                break
            page.wait_for_timeout(100)
        polls_before = watch.requests(f"/api/chat/rooms/{AGENT}/public")
        assert polls_before >= 1, "the room never loaded its chat"

        step = data(server.control("/api/agent/runtime/control", {"action": "step"}))
        assert step["cycle"]["ran"] is True
        with server.client() as c:
            said = data(c.get(f"/api/chat/rooms/{AGENT}/public", params={"limit": 5}))["messages"]
        narration = [m for m in said if m["agent_message_kind"] == "narration"][-1]
        expect(page.get_by_text(narration["text"], exact=True)).to_be_visible()
        assert watch.requests(f"/api/chat/rooms/{AGENT}/public") == polls_before, "the message came by a poll, not SSE"

        board = page.locator("div.nofx-glass", has=page.get_by_text("Daily Bet Board", exact=True))
        expect(board.get_by_text("OPEN", exact=True)).to_be_visible()
        expect(board.locator("option")).to_have_count(len(LOBBY))
        entries = board.locator("div.space-y-2")
        for agent in LOBBY:
            expect(entries).to_contain_text(traders[agent])
        market = watch.bodies["bets"][-1]
        assert market["betting_open"] is True and {e["trader_id"] for e in market["entries"]} == set(LOBBY)
        expect(board).to_contain_text("points=1000")

        # The unchanged client places a bet with the session it bootstrapped: the stake is debited.
        board.locator("select").select_option("t_003")
        with page.expect_response(lambda r: "/api/bets/place" in r.url) as placed:
            board.get_by_role("button", name="Place").click()
        assert placed.value.status == 200
        expect(board).to_contain_text("points=900")
        expect(board).to_contain_text("pool=100")
        avatars_loaded(page)


def test_stream_page_badges_betting_and_chat(server, browser, shots):
    from playwright.sync_api import expect

    with server.client() as c:
        if not data(c.get(f"/api/chat/rooms/{AGENT}/public"))["messages"]:  # run alone: one decision to narrate
            data(server.control("/api/agent/runtime/control", {"action": "step"}))
    with open_page(browser, server, f"/onlytrade/stream?trader={AGENT}", shots, "stream") as (page, watch):
        expect(page.get_by_test_id("app-page-stream")).to_be_visible()
        for label in ("market overview", "headlines", "market breadth"):
            badge = page.get_by_text(label, exact=True).locator("xpath=following-sibling::span[1]")
            expect(badge).to_have_text(re.compile(r"^(fresh|stale)$"))
        expect(page.get_by_text("In-stream betting")).to_be_visible()
        expect(page.get_by_text("OPEN", exact=True).first).to_be_visible()
        expect(page.get_by_text("Session ready.")).to_be_visible()
        with server.client() as c:
            said = data(c.get(f"/api/chat/rooms/{AGENT}/public", params={"limit": 1}))["messages"]
        expect(page.get_by_text(said[-1]["text"], exact=True).first).to_be_visible()
        assert watch.requests("/api/chat/tts/config") >= 1 and watch.requests("/api/bets/credits") >= 1
        avatars_loaded(page)
