"""Every mutating route refuses without the right token; every control call is audited."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
from starlette.routing import Route

from runtime_api.access.tokens import RANK, ROLES
from runtime_api.app import create_app
from runtime_api.services import BootError

from .conftest import TOKEN, assert_error, data_of, make_settings, open_api

pytestmark = pytest.mark.anyio

READ_ONLY_POSTS = {"/api/equity-history-batch"}
# Viewer actions: what the show's audience does from the front end, so they cannot need the
# operator's token. Each has its own protection (runtime_api/access/viewer_actions.py); the tests of
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


async def test_failures_are_limited_but_a_valid_token_is_always_served(api):
    for _ in range(10):
        assert_error(await api.control("/api/agent/runtime/control", {"action": "pause"}, token="bad"), 401, "unauthorized_control_token")
    blocked = assert_error(await api.control("/api/agent/runtime/control", {"action": "pause"}, token="bad"), 429, "too_many_auth_failures")
    assert blocked  # the limiter answers the guesser...
    resp = await api.control("/api/agent/runtime/control", {"action": "pause"}, token="bad")
    assert int(resp.headers["retry-after"]) >= 1
    # ...while the operator, from the same address, is served: kill switch included.
    data_of(await api.control("/api/agent/runtime/control", {"action": "pause"}))
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "drill"}))
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))


async def test_spoofed_forwarded_for_from_an_untrusted_peer_counts_as_the_peer(api, root):
    for i in range(10):
        resp = await api.client.post("/api/agent/runtime/control", json={"action": "pause"},
                                     headers={"x-control-token": "bad", "x-forwarded-for": f"198.51.100.{i}"})
        assert_error(resp, 401, "unauthorized_control_token")
    resp = await api.client.post("/api/agent/runtime/control", json={"action": "pause"},
                                 headers={"x-control-token": "bad", "x-forwarded-for": "198.51.100.200"})
    assert_error(resp, 429, "too_many_auth_failures")
    await api.ctx.control_audit.flush(all_minutes=True)
    lines = [orjson.loads(line) for line in (root / "data" / "runtime" / "control-audit.jsonl").read_bytes().splitlines()]
    assert [(l["ip"], l["count"]) for l in lines] == [("127.0.0.1", 11)]


async def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(root):
    handle, lifespan = await open_api(make_settings(root, FORWARDED_ALLOW_IPS="127.0.0.0/8, 10.0.0.1"))
    try:
        for i in range(10):
            # The left-most element is whatever the caller wrote; the proxies appended the rest.
            resp = await handle.client.post("/api/agent/runtime/control", json={"action": "pause"},
                                            headers={"x-control-token": "bad", "x-forwarded-for": f"198.51.100.{i}, 203.0.113.7, 10.0.0.1"})
            assert_error(resp, 401, "unauthorized_control_token")
        spoofed = {"x-control-token": "bad", "x-forwarded-for": "1.2.3.4, 203.0.113.7"}
        assert_error(await handle.client.post("/api/agent/runtime/control", json={}, headers=spoofed), 429, "too_many_auth_failures")
        other = {"x-control-token": "bad", "x-forwarded-for": "203.0.113.8"}
        assert_error(await handle.client.post("/api/agent/runtime/control", json={}, headers=other), 401, "unauthorized_control_token")
        ok_headers = {"x-control-token": TOKEN, "x-forwarded-for": "203.0.113.7"}
        data_of(await handle.client.post("/api/agent/runtime/control", json={"action": "pause"}, headers=ok_headers))
        audit = data_of(await handle.client.get("/api/ops/audit", headers={"x-control-token": TOKEN}))["records"]
        assert {(r["ip"], r.get("count")) for r in audit if r["action"] == "control.rejected"} == {("203.0.113.7", 11), ("203.0.113.8", 1)}
        assert [r["ip"] for r in audit if r["action"] == "agent.runtime.control.pause"] == ["203.0.113.7"]
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_claimed_audit_fields_are_bounded_and_rejections_do_not_grow_the_audit(api, root):
    audit_file = root / "data" / "runtime" / "control-audit.jsonl"
    huge = "r" * 15_000
    for _ in range(30):
        resp = await api.client.post("/api/agent/runtime/control", json={"action": "pause", "actor": "a" * 5000},
                                     headers={"x-control-token": "bad", "x-request-id": huge})
        assert resp.status_code in (401, 429)
        assert len(resp.headers["x-request-id"]) < 40  # a server-made id, never the claimed one
    assert not audit_file.exists() or audit_file.stat().st_size == 0  # counted in memory, nothing written yet
    await api.ctx.control_audit.flush(all_minutes=True)
    size = audit_file.stat().st_size
    assert size < 1000 and huge[:100] not in audit_file.read_text()
    [line] = [orjson.loads(x) for x in audit_file.read_bytes().splitlines()]
    assert line["action"] == "control.rejected" and line["count"] == 30 and line["holder"] is None
    assert line["errors"] == {"unauthorized_control_token": 10, "too_many_auth_failures": 20}
    # A holder's claimed fields are kept, but bounded and reduced to a safe charset.
    resp = await api.client.post("/api/agent/runtime/control", json={"action": "pause", "actor": "ops-alice\n<script>" + "b" * 500},
                                 headers={"x-control-token": TOKEN, "x-request-id": "ticket-42 <x> " + huge})
    data_of(resp)
    last = orjson.loads(audit_file.read_bytes().splitlines()[-1])
    assert last["actor"].startswith("ops-alicescriptbbb") and len(last["actor"]) == 64
    assert last["request_id"].startswith("ticket-42xrrr") and len(last["request_id"]) == 64
    assert last["holder"] == "control-api-token" and last["role"] == "admin"
    assert last["actor_claimed"] is True and last["request_id_claimed"] is True


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
        ("agent.runtime.control.pause", "ok"),
        ("agent.runtime.control.explode", "invalid"),
        ("dev.factory_reset", "dry_run"),
        ("agent.register", "rejected"),
    ]
    assert lines[0]["actor"] == "ops-alice" and lines[0]["actor_claimed"] is True
    assert lines[1]["actor"] == "control-api-token" and lines[1]["actor_claimed"] is False and lines[1]["request_id_claimed"] is False
    assert lines[3]["target"] == "t_999" and lines[3]["error"] == "agent_manifest_not_found"
    assert all(l["request_id"] and l["ts"] and l["ip"] and l["holder"] == "control-api-token" for l in lines)
    assert TOKEN.encode() not in audit_file.read_bytes()
    logged = [r.getMessage() for r in caplog.records if "[control_audit]" in r.getMessage()]
    assert len(logged) == 5 and all(TOKEN not in m for m in logged)

    assert_error(await api.get("/api/ops/audit"), 401, "unauthorized_control_token")
    tail = data_of(await api.client.get("/api/ops/audit", params={"limit": 2}, headers={"x-control-token": TOKEN}))
    assert tail["count"] == 2
    # The audit read writes out the rejected-call counts first: both rejections, one line.
    assert [(r["action"], r["result"]) for r in tail["records"]] == [("agent.register", "rejected"), ("control.rejected", "unauthorized")]
    assert tail["records"][1]["count"] == 2 and tail["records"][1]["actions"] == {"agent.runtime.control.pause": 1, "ops.audit.read": 1}


# ---- roles ------------------------------------------------------------------------------------

ROLE_TOKENS = {role: f"{role}-token-{'0123456789abcdef' * 2}" for role in ROLES}
ADMIN_ACTIONS = {
    ("/api/agent/runtime/kill-switch", "deactivate"), ("/api/dev/factory-reset", None), ("/api/dev/reset-agent", None),
    ("/api/ops/approvals/{approval_id}/approve", None), ("/api/ops/approvals/{approval_id}/cancel", None),
}


def write_tokens_file(path: Path, tokens: dict[str, tuple[str, str]]) -> Path:
    """tokens: name -> (role, token); written as the runbook says, with a comment line."""
    lines = ["# name:role:sha256(token)"] + [f"{name}:{role}:{hashlib.sha256(tok.encode()).hexdigest()}" for name, (role, tok) in tokens.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
async def role_api(root):
    file = write_tokens_file(root / "control-tokens", {f"{role}-holder": (role, tok) for role, tok in ROLE_TOKENS.items()})
    handle, lifespan = await open_api(make_settings(root, CONTROL_TOKENS_FILE=str(file)))
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


def bodies_for(route) -> list[dict]:
    if route.path == "/api/agent/runtime/kill-switch":
        return [{"action": "activate", "reason": "walk"}, {"action": "deactivate"}]
    return [{"action": "pause"}]


async def test_route_walk_every_role_gets_exactly_its_routes(role_api, root):
    admin_seen = set()
    for route in protected_routes(role_api.app):
        method = sorted((route.methods or {"POST"}) - {"HEAD"})[0]
        for body in bodies_for(route):
            required = route.role(body) if callable(route.role) else route.role
            assert required in ROLES, route.path
            if required == "admin":
                admin_seen.add((route.path, body.get("action") if route.path.endswith("kill-switch") else None))
            for role in ROLES:
                resp = await role_api.client.request(method, concrete(route.path).replace("{approval_id}", "apr_x"), json=body,
                                                     headers={"x-control-token": ROLE_TOKENS[role]})
                if RANK[role] < RANK[required]:
                    body_json = assert_error(resp, 403, "insufficient_role")
                    assert required in body_json["message"] and role in body_json["message"]
                else:
                    assert resp.status_code not in (401, 403), (route.path, role, resp.text)
    assert admin_seen == ADMIN_ACTIONS
    # The legacy CONTROL_API_TOKEN is still one admin token next to the file's.
    data_of(await role_api.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
    records = [orjson.loads(x) for x in (root / "data" / "runtime" / "control-audit.jsonl").read_bytes().splitlines()]
    assert records and all(r["holder"] in {f"{role}-holder" for role in ROLES} | {"control-api-token"} for r in records)
    assert {r["holder"] for r in records if r["result"] == "forbidden"} == {"viewer-holder", "auditor-holder", "operator-holder"}


async def test_a_broken_tokens_file_refuses_boot(root):
    bad = root / "tokens-bad"
    bad.write_text("alice:superuser:" + "0" * 64 + "\n")
    with pytest.raises(BootError, match="line 1: role must be one of"):
        create_app(make_settings(root, CONTROL_TOKENS_FILE=str(bad)))
    with pytest.raises(BootError, match="cannot read"):
        create_app(make_settings(root, CONTROL_TOKENS_FILE=str(root / "missing")))
    one_admin = write_tokens_file(root / "tokens-one", {"bob": ("operator", ROLE_TOKENS["operator"])})
    with pytest.raises(BootError, match="CONTROL_TWO_PERSON=true needs at least two admin tokens"):
        create_app(make_settings(root, CONTROL_TOKENS_FILE=str(one_admin), CONTROL_TWO_PERSON="true"))


async def test_the_tokens_file_is_reloaded_and_a_broken_edit_keeps_the_last_good_set(role_api, root, caplog):
    file = root / "control-tokens"
    store = role_api.ctx.access.tokens
    new_token = "carol-" + "9" * 10 + "abcdefghijklmnop"
    write_tokens_file(file, {"carol": ("operator", new_token)})
    store._checked = 0.0  # skip the 2 s re-check throttle
    assert store.lookup(new_token).name == "carol" and store.lookup(ROLE_TOKENS["admin"]) is None
    file.write_text("garbage\n")
    store._checked = 0.0
    assert store.lookup(new_token).name == "carol"
    assert "keeping the 1 tokens loaded before" in caplog.text
