"""Bad numbers: every route, every numeric query or body value, non-finite or out of range.

Walks the app's own route table (the `/onlytrade/` mount too), sends `inf`, `nan`, `1e400`, `1e308`
and friends for every numeric parameter the routes read, and requires a 2xx/4xx JSON answer: never
a 500. The numeric parameter names come from the route sources, so a new one is walked as well.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

from runtime_api.app import create_app

from tests.api.conftest import TOKEN, make_settings

pytestmark = pytest.mark.anyio

ROUTES_DIR = Path(__file__).resolve().parents[2] / "runtime_api" / "routes"
BAD_QUERY = ["inf", "-inf", "nan", "1e400", "-1e400", "1e308", "-1e308", "99999999999999999999999", "-1", "0"]
# JSON can carry 1e308 and huge integers; inf/nan/1e400 reach a handler only as strings.
BAD_BODY = [1e308, -1e308, 99999999999999999999999, -1, 0, "inf", "-inf", "nan", "1e400", True, [], {}]

# Every control route's actions and the numeric body keys each reads.
CONTROL_BODIES = [
    ("/api/agent/runtime/control", {"action": "set_cycle_ms"}, ["cycle_ms"]),
    ("/api/agent/runtime/control", {"action": "set_decision_every_bars"}, ["decision_every_bars"]),
    ("/api/agent/runtime/control", {"action": "step"}, ["bars", "limit"]),
    ("/api/replay/runtime/control", {"action": "step"}, ["bars"]),
    ("/api/replay/runtime/control", {"action": "set_speed"}, ["speed"]),
    ("/api/replay/runtime/control", {"action": "set_cursor"}, ["cursor_index"]),
    ("/api/replay/runtime/control", {"action": "set_loop"}, ["loop"]),
    ("/api/dev/factory-reset", {"confirm": "RESET", "dry_run": True}, ["cursor_index", "use_warmup"]),
    ("/api/dev/reset-agent", {"trader_id": "t_001", "confirm": "t_001", "reset_stats": True, "dry_run": True}, ["dry_run"]),
    ("/api/traders/t_001/close-position", {"dry_run": True}, ["quantity", "symbol"]),
    ("/api/equity-history-batch", {"trader_ids": ["t_001"]}, ["hours"]),
]
# Viewer routes (no control token): the bet stake is their one number.
VIEWER_BODIES = [("/api/bets/place", {"trader_id": "t_001"}, ["stake_amount"])]
NON_NUMERIC_BODY_KEYS = {"action", "actor", "confirm", "control_token", "reason", "trader_id", "trader_ids",
                         "reset_memory", "reset_positions", "reset_stats", "approval_id", "request_id",
                         "message_id", "user_nickname", "text", "user_session_id", "room_id"}


def _source_names(pattern: str) -> set[str]:
    found: set[str] = set()
    for path in ROUTES_DIR.glob("*.py"):
        found |= set(re.findall(pattern, path.read_text()))
    return found


QUERY_NAMES = sorted(
    _source_names(r'query_int\((?:call\.)?request, "(\w+)"')
    | _source_names(r'query_params\.get\("(\w+)"\)')
)


def _fill(path: str) -> str:
    for name, value in (("agent_id", "t_001"), ("trader_id", "t_001"), ("room_id", "t_001"),
                        ("file_name", "avatar.jpg"), ("name", "viewer.js")):
        path = path.replace("{" + name + "}", value)
    return path


def _get_routes(app) -> list[str]:
    out = []
    for route in app.routes:
        children = [(route.path, r) for r in route.routes] if isinstance(route, Mount) else [("", route)]
        for prefix, r in children:
            if isinstance(r, Route) and "GET" in (r.methods or ()) and not getattr(r, "stream", False):
                out.append(prefix + _fill(r.path))
    return out


@pytest.fixture
async def app_client(root):
    app = create_app(make_settings(root, ONLYTRADE_SEED_AGENTS="all"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def test_every_numeric_query_name_is_known():
    assert {"limit", "hours", "decision_limit", "intraday_limit", "daily_limit"} <= set(QUERY_NAMES)


def test_every_body_key_is_walked():
    keys = _source_names(r'body\.get\("(\w+)"') | _source_names(r'_number\(call\.body, "(\w+)"')
    walked = {k for _, _, ks in CONTROL_BODIES + VIEWER_BODIES for k in ks}
    assert keys - walked - NON_NUMERIC_BODY_KEYS == set()


async def test_no_query_number_gives_a_500(app_client):
    app, client = app_client
    failures = []
    headers = {"x-control-token": TOKEN}
    for path in _get_routes(app):
        for name in QUERY_NAMES:
            for value in BAD_QUERY:
                params = {name: value, "trader_id": "t_001", "day_key": "2025-01-02"}
                resp = await client.get(path, params=params, headers=headers)
                if resp.status_code >= 500 or not resp.headers.get("content-type", "").startswith(("application/json", "text/", "image/")):
                    failures.append((path, name, value, resp.status_code))
    assert failures == []


async def test_no_body_number_gives_a_500(app_client):
    app, client = app_client
    failures = []
    for path, template, keys in CONTROL_BODIES:
        for key in keys:
            for value in BAD_BODY:
                resp = await client.post(path, json={**template, key: value}, headers={"x-control-token": TOKEN})
                if resp.status_code >= 500:
                    failures.append((path, template.get("action"), key, value, resp.status_code, resp.text[:120]))
                else:
                    assert resp.json()["success"] in (True, False)
    assert failures == []


async def test_no_stake_number_gives_a_500(app_client):
    app, client = app_client
    session = (await client.post("/api/chat/session/bootstrap", json={})).json()["data"]["user_session_id"]
    failures = []
    for path, template, keys in VIEWER_BODIES:
        for key in keys:
            for value in BAD_BODY:
                resp = await client.post(path, json={**template, "user_session_id": session, key: value})
                if resp.status_code >= 500:
                    failures.append((path, key, value, resp.status_code, resp.text[:120]))
                else:
                    assert resp.json()["success"] in (True, False)
    assert failures == []


async def test_query_infinities_are_clamped_like_node(app_client):
    app, client = app_client
    huge = (await client.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "1m", "limit": "inf"})).json()
    small = (await client.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "1m", "limit": "-1e400"})).json()
    nan = (await client.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "1m", "limit": "nan"})).json()
    assert len(small["data"]["frames"]) == 1  # clamped to the minimum
    assert len(huge["data"]["frames"]) >= len(nan["data"]["frames"]) > 1  # max and the default


async def test_factory_reset_with_cursor_1e308_runs_once_and_answers(app_client):
    app, client = app_client
    ctx = app.state.ctx
    resp = await client.post("/api/dev/factory-reset", json={"confirm": "RESET", "cursor_index": 1e308},
                             headers={"x-control-token": TOKEN})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    last = len(ctx.svc.replay.timeline) - 1
    assert data["cursor_index"] == last == ctx.svc.replay.cursor  # the answer names what was done
    audit = ctx.control_audit.tail(5)
    assert audit[-1]["action"] == "dev.factory_reset" and audit[-1]["result"] == "ok"


async def test_step_bars_inf_is_clamped_not_a_500(app_client):
    app, client = app_client
    before = app.state.ctx.svc.replay.cursor
    resp = await client.post("/api/replay/runtime/control", json={"action": "step", "bars": "1e400"},
                             headers={"x-control-token": TOKEN})
    assert resp.status_code == 200, resp.text
    assert app.state.ctx.svc.replay.cursor - before == 120  # the step maximum
