"""The kill switch: API, environment and file sources; no cycle, LLM call or order while active."""

from __future__ import annotations

import anyio
import pytest

from .conftest import assert_error, data_of, make_settings, open_api

pytestmark = pytest.mark.anyio


async def start_agents(api, *ids):
    for agent_id in ids:
        data_of(await api.control(f"/api/agents/{agent_id}/register"))
        data_of(await api.control(f"/api/agents/{agent_id}/start"))


async def test_kill_switch_blocks_resume_and_step_and_is_persisted(api, root):
    await start_agents(api, "t_001")
    on = data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "drill", "actor": "ops"}))
    assert on["kill_switch"]["active"] is True and on["kill_switch"]["reason"] == "drill"
    assert on["kill_switch"]["activated_by"] == "ops" and on["kill_switch"]["sources"] == ["api"]
    assert on["replay"]["running"] is False
    assert (root / "data" / "runtime" / "kill-switch.json").is_file()
    for action in ("resume", "step"):
        assert_error(await api.control("/api/agent/runtime/control", {"action": action}), 423, "kill_switch_active")
        assert_error(await api.control("/api/replay/runtime/control", {"action": action}), 423, "kill_switch_active")
    assert (await api.ctx.runtime.run_cycle(force=True))["reason"] == "kill_switch"
    assert api.ctx.svc.memory.get("t_001") is None  # no decision was recorded while active
    off = data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "deactivate", "actor": "ops"}))
    assert off["kill_switch"]["active"] is False and off["kill_switch"]["deactivated_by"] == "ops"
    assert_error(await api.control("/api/agent/runtime/kill-switch", {"action": "explode"}), 400, "invalid_action")
    step = data_of(await api.control("/api/agent/runtime/control", {"action": "step"}))
    assert step["cycle"]["ran"] is True


async def test_kill_switch_file_and_env_hold_it_on(root):
    (root / "data" / "runtime").mkdir(parents=True)
    (root / "data" / "runtime" / "KILL_SWITCH").touch()
    handle, lifespan = await open_api(make_settings(root))
    try:
        await start_agents(handle, "t_001")
        status = data_of(await handle.get("/api/agent/runtime/status"))
        assert status["kill_switch"]["active"] is True and status["kill_switch"]["sources"] == ["file"]
        assert status["running"] is False and status["paused_reason"] == "kill_switch"
        # The API cannot clear an operator's file: it stays active until the file is removed.
        data_of(await handle.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
        assert_error(await handle.control("/api/agent/runtime/control", {"action": "step"}), 423, "kill_switch_active")
        (root / "data" / "runtime" / "KILL_SWITCH").unlink()
        await anyio.sleep(0.3)  # the file is stat()ed at most every 250 ms
        assert data_of(await handle.control("/api/agent/runtime/control", {"action": "step"}))["cycle"]["ran"] is True
        packet = data_of(await handle.get("/api/status", params={"trader_id": "t_001"}))
        assert packet["market_gate"]["kill_switch_active"] is False
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_env_kill_switch(root, monkeypatch):
    monkeypatch.setenv("KILL_SWITCH", "1")
    handle, lifespan = await open_api(make_settings(root))
    try:
        status = data_of(await handle.get("/api/agent/runtime/status"))
        assert status["kill_switch"]["sources"] == ["env"]
        assert_error(await handle.control("/api/agent/runtime/control", {"action": "resume"}), 423, "kill_switch_active")
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)
