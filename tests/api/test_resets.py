"""Resets: order of checks, dry runs that change nothing, backups, scoped and race-free."""

from __future__ import annotations

import hashlib
import os

import pytest

from .conftest import assert_error, data_of

pytestmark = pytest.mark.anyio

AGENTS = ("t_001", "t_007", "demo_momentum")


def tree(root) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root / "data"):
        for name in files:
            if name.endswith(".lock") or name in ("control-audit.jsonl", "gate-events.jsonl"):  # logs, not state
                continue
            p = os.path.join(dirpath, name)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


async def trade_a_little(api):
    """Register the agents and run a few cycles so every snapshot has positions and history."""
    for agent_id in AGENTS:
        data_of(await api.control(f"/api/agents/{agent_id}/register"))
        data_of(await api.control(f"/api/agents/{agent_id}/start"))
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    api.ctx.settings  # flat entry makes demo_momentum buy within a few cycles
    for _ in range(6):
        data_of(await api.control("/api/replay/runtime/control", {"action": "step", "bars": 5}))
    data_of(await api.control("/api/agent/runtime/control", {"action": "pause"}))


@pytest.fixture
async def traded(root):
    from .conftest import make_settings, open_api

    handle, lifespan = await open_api(make_settings(root, AGENT_FLAT_ENTRY_ENABLED="true", AGENT_FLAT_ENTRY_MIN_CYCLES="1"))
    try:
        await trade_a_little(handle)
        yield handle
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"confirm": "RESET"}, 400, "invalid_trader_id"),
        ({"trader_id": "t_999", "confirm": "t_999", "reset_memory": True}, 404, "trader_not_found"),
        ({"trader_id": "t_001", "confirm": "RESET", "reset_memory": True}, 400, "reset_confirmation_required"),
        ({"trader_id": "t_001", "reset_memory": True}, 400, "reset_confirmation_required"),
        ({"trader_id": "t_001", "confirm": "t_001"}, 400, "no_reset_scope_selected"),
        ({"trader_id": "t_001", "confirm": "t_001", "reset_stats": "no"}, 400, "no_reset_scope_selected"),
    ],
)
async def test_reset_agent_order_of_checks(api, body, status, code):
    assert_error(await api.control("/api/dev/reset-agent", body), status, code)


@pytest.mark.parametrize("confirm", [None, "reset", " RESET x", True])
async def test_factory_reset_needs_exact_confirmation(api, confirm):
    body = {} if confirm is None else {"confirm": confirm}
    assert_error(await api.control("/api/dev/factory-reset", body), 400, "reset_confirmation_required")


async def test_dry_runs_change_nothing_and_say_what_would_change(traded, root):
    before = tree(root)
    snap = data_of(await traded.get("/api/agent/memory", params={"trader_id": "demo_momentum"}))
    assert snap["holdings"], "fixture should have traded"

    plan = data_of(await traded.control("/api/dev/factory-reset", {"confirm": "RESET", "dry_run": True, "use_warmup": True}))
    assert plan["dry_run"] is True and plan["cursor_index"] == 119
    agents = {a["trader_id"]: a for a in plan["would_reset"]["agents"]}
    assert set(AGENTS) <= set(agents)
    assert agents["demo_momentum"]["clears"]["holdings"] == len(snap["holdings"])
    assert agents["demo_momentum"]["clears"]["open_lots"] == len(snap["open_lots"])
    assert agents["demo_momentum"]["clears"]["decisions"] == snap["stats"]["decisions"]

    one = data_of(await traded.control("/api/dev/reset-agent", {
        "trader_id": "demo_momentum", "confirm": "demo_momentum", "reset_positions": "TRUE", "dry_run": "true"}))
    assert one["dry_run"] is True and one["reset_positions"] is True and one["reset_stats"] is False
    assert one["would_reset"]["clears"]["holdings"] == len(snap["holdings"])
    assert one["would_reset"]["clears"]["decisions"] == 0  # positions only: stats stay
    assert tree(root) == before
    audit = (root / "data" / "runtime" / "control-audit.jsonl").read_text().splitlines()
    assert sum('"result":"dry_run"' in line for line in audit) == 2


async def test_scoped_reset_leaves_other_agents_byte_identical_and_backs_up(traded, root):
    mem = root / "data" / "agent-memory"
    others = {a: (mem / f"{a}.json").read_bytes() for a in AGENTS if a != "demo_momentum"}
    original = (mem / "demo_momentum.json").read_bytes()
    result = data_of(await traded.control("/api/dev/reset-agent", {
        "trader_id": "demo_momentum", "confirm": "demo_momentum", "reset_positions": True}))
    assert result["memory"]["holdings"] == [] and result["memory"]["open_lots"] == []
    assert result["memory"]["stats"]["decisions"] > 0  # stats kept
    backup = root / result["backup"]
    assert (backup / "demo_momentum.json").read_bytes() == original
    for agent_id, raw in others.items():
        assert (mem / f"{agent_id}.json").read_bytes() == raw
    assert data_of(await traded.get("/api/positions", params={"trader_id": "demo_momentum"})) == []


async def test_any_registered_agent_can_be_reset(traded):
    result = data_of(await traded.control("/api/dev/reset-agent", {"trader_id": "t_007", "confirm": "t_007", "reset_memory": True}))
    assert result["memory"]["trader_id"] == "t_007" and result["memory"]["stats"]["decisions"] == 0


async def test_factory_reset_stays_paused_until_explicit_resume(traded, root):
    result = data_of(await traded.control("/api/dev/factory-reset", {"confirm": "RESET", "cursor_index": 42.7}))
    assert result["cursor_index"] == 42 and result["dry_run"] is False
    assert all(s["stats"]["decisions"] == 0 and not s["holdings"] for s in result["state"]["memory"])
    assert (root / result["backup"] / "demo_momentum.json").is_file()
    assert result["state"]["runtime"]["running"] is False and result["state"]["runtime"]["paused_reason"] == "after_reset"
    # Viewer polling never resumes anything.
    for path in ("/api/traders", "/api/competition", "/api/ops/live-preflight", "/api/agents/registered", "/api/status"):
        await traded.get(path)
    status = data_of(await traded.get("/api/agent/runtime/status"))
    assert status["running"] is False and status["paused_reason"] == "after_reset"
    assert data_of(await traded.control("/api/agent/runtime/control", {"action": "resume"}))["state"]["running"] is True
