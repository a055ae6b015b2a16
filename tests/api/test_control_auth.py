"""Every mutating route refuses without the right token; every control call is audited."""

from __future__ import annotations

import orjson
import pytest
from starlette.routing import Route

from .conftest import TOKEN, assert_error, data_of, make_settings, open_api

pytestmark = pytest.mark.anyio

READ_ONLY_POSTS = {"/api/equity-history-batch"}
# Viewer actions: what the show's audience does from the front end, so they cannot need the
# operator's token. Each has its own protection (runtime_api/viewer_actions.py); the tests of
# tests/audience prove them: posting is off by default and needs an HMAC session credential and
# rate limits, a bet needs the credential and fits the balance, speech is off unless configured.
VIEWER_ACTIONS = {
    "/api/chat/session/bootstrap": {"POST"},
    "/api/chat/rooms/{room_id}/messages": {"POST"},
    "/api/chat/tts": {"POST"},
    "/api/bets/place": {"POST"},
}
WRONG_TOKENS = {
    "missing": None,
    "empty": "",
    "wrong_same_length": "x" * len(TOKEN),
    "wrong_length": TOKEN + "x",
    "prefix": TOKEN[:-1],
}


def concrete(path: str) -> str:
    return path.replace("{agent_id}", "t_001").replace("{trader_id}", "t_001")


def protected_routes(app) -> list[Route]:
    return [r for r in app.routes if isinstance(r, Route) and getattr(r, "control", False)]


async def test_every_non_get_route_is_protected(api):
    routes = [r for r in api.app.routes if isinstance(r, Route)]
    viewer = {}
    for route in routes:
        mutating = (route.methods or set()) - {"GET", "HEAD"}
        if getattr(route, "viewer_action", False):
            viewer[route.path] = mutating
            assert route.protections and not getattr(route, "control", False), route.path
        elif mutating and route.path not in READ_ONLY_POSTS:
            assert getattr(route, "control", False), f"{route.path} is a mutating route without control_route"
    assert viewer == VIEWER_ACTIONS, "a viewer action was added or removed: review its protections and this list"
    assert len(protected_routes(api.app)) >= 11


@pytest.mark.parametrize("label", sorted(WRONG_TOKENS))
async def test_protected_routes_refuse_bad_tokens(api, label):
    token = WRONG_TOKENS[label]
    for route in protected_routes(api.app):
        method = sorted((route.methods or {"POST"}) - {"HEAD"})[0]
        headers = {} if token is None else {"x-control-token": token}
        resp = await api.client.request(method, concrete(route.path), json={"action": "pause"}, headers=headers)
        assert_error(resp, 401, "unauthorized_control_token")
        api.ctx.auth_failures.clear()  # this test checks every route, not the burst limit


async def test_token_sources_and_precedence(api):
    path = "/api/agent/runtime/control"
    data_of(await api.client.post(path, json={"action": "pause"}, headers={"authorization": f"Bearer {TOKEN}"}))
    data_of(await api.client.post(path, json={"action": "pause", "control_token": TOKEN}))
    # A wrong x-control-token wins over a right bearer header (the Node precedence).
    resp = await api.client.post(path, json={"action": "pause"}, headers={"x-control-token": "nope", "authorization": f"Bearer {TOKEN}"})
    assert_error(resp, 401, "unauthorized_control_token")


async def test_auth_runs_before_validation(api):
    assert_error(await api.control("/api/agents/BAD ID/register", token=None), 401, "unauthorized_control_token")
    assert_error(await api.control("/api/agents/BAD_ID/register"), 400, "invalid_agent_id")
    bad_json = await api.client.post("/api/agent/runtime/control", content=b"{oops", headers={"content-type": "application/json"})
    assert_error(bad_json, 401, "unauthorized_control_token")


async def test_repeated_failures_are_slowed_down(api):
    for _ in range(10):
        assert_error(await api.control("/api/agent/runtime/control", {"action": "pause"}, token="bad"), 401, "unauthorized_control_token")
    assert_error(await api.control("/api/agent/runtime/control", {"action": "pause"}), 429, "too_many_auth_failures")


async def test_no_token_configured_fails_closed(root):
    settings = make_settings(root).replace(control_api_token="")
    handle, lifespan = await open_api(settings)
    try:
        assert_error(await handle.control("/api/agent/runtime/control", {"action": "pause"}), 503, "control_token_not_configured")
        assert_error(await handle.control("/api/dev/factory-reset", {"confirm": "RESET"}, token=None), 503, "control_token_not_configured")
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)
    opened = settings.replace(control_api_allow_unauthenticated=True)
    handle, lifespan = await open_api(opened)
    try:
        data_of(await handle.control("/api/agent/runtime/control", {"action": "pause"}, token=None))
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_every_control_call_is_audited_without_the_token(api, root, caplog):
    caplog.set_level("INFO", logger="onlytrade.control")
    await api.control("/api/agent/runtime/control", {"action": "pause"}, token="wrong-token")
    await api.control("/api/agent/runtime/control", {"action": "pause", "actor": "ops-alice"})
    await api.control("/api/agent/runtime/control", {"action": "explode"})
    await api.control("/api/dev/factory-reset", {"confirm": "RESET", "dry_run": True})
    await api.control("/api/agents/t_999/register")
    audit_file = root / "data" / "runtime" / "control-audit.jsonl"
    lines = [orjson.loads(line) for line in audit_file.read_bytes().splitlines()]
    assert [(l["action"], l["result"]) for l in lines] == [
        ("agent.runtime.control.pause", "unauthorized"),
        ("agent.runtime.control.pause", "ok"),
        ("agent.runtime.control.explode", "invalid"),
        ("dev.factory_reset", "dry_run"),
        ("agent.register", "rejected"),
    ]
    assert lines[1]["actor"] == "ops-alice" and lines[4]["target"] == "t_999" and lines[4]["error"] == "agent_manifest_not_found"
    assert all(l["request_id"] and l["ts"] and l["ip"] for l in lines)
    assert TOKEN.encode() not in audit_file.read_bytes()
    logged = [r.getMessage() for r in caplog.records if "[control_audit]" in r.getMessage()]
    assert len(logged) == 5 and all(TOKEN not in m for m in logged)

    assert_error(await api.get("/api/ops/audit"), 401, "unauthorized_control_token")
    tail = data_of(await api.client.get("/api/ops/audit", params={"limit": 2}, headers={"x-control-token": TOKEN}))
    assert tail["count"] == 2
    assert [(r["action"], r["result"]) for r in tail["records"]] == [("agent.register", "rejected"), ("ops.audit.read", "unauthorized")]
