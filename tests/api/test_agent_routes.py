"""The reference's agentManagementRoutes behaviours, against a temporary two-agent root."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

from .conftest import assert_error, data_of, make_settings, open_api, two_agent_root

pytestmark = pytest.mark.anyio


@pytest.fixture
async def two(tmp_path):
    handle, lifespan = await open_api(make_settings(two_agent_root(tmp_path, REPO)))
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_register_start_stop_unregister_lifecycle(two):
    available = data_of(await two.get("/api/agents/available"))
    assert [a["agent_id"] for a in available] == ["t_001", "t_002"]
    assert data_of(await two.get("/api/agents/registered")) == []

    registered = data_of(await two.control("/api/agents/t_001/register"))
    assert registered["status"] == "stopped" and registered["agent_id"] == "t_001"
    again = data_of(await two.control("/api/agents/t_001/register"))
    assert again["registered_at"] == registered["registered_at"]  # idempotent

    traders = data_of(await two.get("/api/traders"))
    assert len(traders) == 1
    row = traders[0]
    assert re.fullmatch(r"/api/agents/t_001/assets/avatar\.jpg\?v=\d+", row["avatar_url"])
    assert re.fullmatch(r"/api/agents/t_001/assets/avatar-hd\.jpg\?v=\d+", row["avatar_hd_url"])
    assert row["trading_style"] == "momentum_trend" and row["risk_profile"] == "balanced" and row["personality"]
    pool = row["stock_pool"]
    assert len(pool) == 10 and pool[0] == "002131.SZ"

    symbols = (await two.get("/api/symbols", params={"trader_id": "t_001"})).json()
    assert [s["symbol"] for s in symbols["symbols"]] == pool
    assert data_of(await two.get("/api/decisions/latest", params={"trader_id": "t_001", "limit": 5})) == []

    avatar = await two.get(row["avatar_url"])
    assert avatar.status_code == 200 and avatar.content == b"\xff\xd8\xff\xe0 fake jpeg bytes"
    assert avatar.headers["cache-control"] == "public, max-age=86400"

    comp = data_of(await two.get("/api/competition"))
    assert comp["count"] == 1 and comp["traders"][0]["is_running"] is False

    started = data_of(await two.control("/api/agents/t_001/start"))
    assert started["status"] == "running"
    assert data_of(await two.control("/api/agents/t_001/start"))["last_started_at"] == started["last_started_at"]
    assert data_of(await two.get("/api/competition"))["traders"][0]["is_running"] is True
    assert data_of(await two.control("/api/agents/t_001/stop"))["status"] == "stopped"

    removed = data_of(await two.control("/api/agents/t_001/unregister"))
    assert removed["removed"] is True
    assert data_of(await two.get("/api/traders")) == []
    assert data_of(await two.control("/api/agents/t_001/unregister"))["removed"] is False


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/api/agents/T_001/register", 400, "invalid_agent_id"),
        ("/api/agents/x/register", 400, "invalid_agent_id"),
        ("/api/agents/t_999/register", 404, "agent_manifest_not_found"),
        ("/api/agents/t_002/start", 409, "agent_not_registered"),
        ("/api/agents/t_002/stop", 409, "agent_not_registered"),
    ],
)
async def test_registry_errors(two, path, status, code):
    assert_error(await two.control(path), status, code)


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/api/agents/T_1/assets/avatar.jpg", 400, "invalid_agent_id"),
        ("/api/agents/t_001/assets/.hidden", 400, "invalid_asset_file"),
        ("/api/agents/t_001/assets/missing.jpg", 404, "agent_asset_not_found"),
    ],
)
async def test_asset_errors(two, path, status, code):
    assert_error(await two.get(path), status, code)


async def test_unregistered_agent_has_no_audit(two):
    assert_error(await two.get("/api/agents/t_002/decision-audit/latest"), 404, "agent_not_registered")
    data_of(await two.control("/api/agents/t_002/register"))
    assert_error(await two.get("/api/agents/t_002/decision-audit/day", params={"day_key": "2026-2-1"}), 400, "invalid_day_key")
    day = data_of(await two.get("/api/agents/t_002/decision-audit/day", params={"day_key": "2026-02-14"}))
    assert day == {"trader_id": "t_002", "day_key": "2026-02-14", "count": 0, "records": []}


async def test_manifest_edits_are_picked_up_by_the_rescan_not_by_reads(two, tmp_path):
    import orjson

    data_of(await two.control("/api/agents/t_002/register"))
    manifest = tmp_path / "root" / "agents" / "t_002" / "agent.json"
    m = orjson.loads(manifest.read_bytes())
    m["agent_name"] = "Renamed Rebound"
    manifest.write_bytes(orjson.dumps(m))
    assert data_of(await two.get("/api/traders"))[0]["trader_name"] == "Value Rebound"  # reads never rescan
    changed = two.ctx.svc.registry.rescan()
    assert changed is True
    assert data_of(await two.get("/api/traders"))[0]["trader_name"] == "Renamed Rebound"
