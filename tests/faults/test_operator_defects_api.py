"""Operator-facing fixes, in process: the cycle heartbeat a probe reads, preflight's kill-switch row,
a 503 audited as what it is, the SSE duration setting, backup retention after a reset."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from ops.probe import heartbeat_problem
from runtime_api.app import create_app
from tests.api.conftest import TOKEN, data_of, make_settings, open_api

pytestmark = pytest.mark.anyio


async def test_a_stopped_scheduler_makes_the_heartbeat_stale(root):
    # One cycle per bar at 1000 bars a minute: a cycle is due every 60 ms.
    settings = make_settings(root, ONLYTRADE_SEED_AGENTS="demo_momentum", REPLAY_SPEED="1000",
                             AGENT_DECISION_EVERY_BARS="1")
    api, lifespan = await open_api(settings)
    try:
        deadline = time.monotonic() + 20
        while api.ctx.runtime.last_cycle_started_ms is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        health = (await api.get("/health")).json()
        assert health["cycle_heartbeat"]["expected"] is True and health["cycle_heartbeat"]["expected_every_ms"] == 60
        assert heartbeat_problem(health, min_ms=1000) is None
        api.ctx.runtime._stopping = True  # the scheduler loop ends: nothing starts cycles any more
        await asyncio.sleep(1.5)
        stale = (await api.get("/health")).json()
        assert stale["cycle_heartbeat"]["age_ms"] >= 1000
        assert "scheduler looks wedged" in heartbeat_problem(stale, min_ms=1000)
        # Paused, no cycle is due: the same silence is healthy.
        data_of(await api.control("/api/agent/runtime/control", {"action": "pause"}))
        paused = (await api.get("/health")).json()
        assert paused["cycle_heartbeat"]["expected"] is False and heartbeat_problem(paused, min_ms=1000) is None
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_preflight_kill_switch_row_names_sources_not_a_stale_api_reason(root):
    api, lifespan = await open_api(make_settings(root))
    try:
        data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "old-incident"}))
        row = data_of(await api.get("/api/ops/live-preflight"))["checks"]["kill_switch"]
        assert row["level"] == "FAIL" and row["reason"] == "kill_switch_active: api (old-incident)"
        data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
        (root / "data" / "runtime" / "KILL_SWITCH").touch()
        await asyncio.sleep(0.3)  # the flag file is stat()ed at most every 250 ms
        row = data_of(await api.get("/api/ops/live-preflight"))["checks"]["kill_switch"]
        assert row["level"] == "FAIL" and row["reason"] == "kill_switch_active: file"
        assert row["sources"] == ["file"] and row["api_reason"] is None  # "old-incident" does not explain it
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_a_503_is_audited_as_unavailable_not_unauthorized(root):
    app = create_app(make_settings(root))  # no lifespan: the runtime has not finished booting
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        resp = await client.post("/api/agent/runtime/control", json={"action": "pause"}, headers={"x-control-token": TOKEN})
    assert resp.status_code == 503
    entry = app.state.ctx.control_audit.tail(1)[-1]
    assert entry["result"] == "unavailable" and entry["error"] == "agent_runtime_unavailable"


async def test_sse_max_stream_duration_is_a_setting(root):
    api, lifespan = await open_api(make_settings(root, SSE_MAX_STREAM_MS="90000"))
    try:
        streams = api.ctx.extra["viewer_streams"]
        assert streams.hub.max_stream_ms == 90000 and streams.market.max_stream_ms == 90000
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_backups_are_pruned_at_boot_and_after_a_reset(root):
    backups = root / "data" / "backups"
    for i in range(8):
        folder = backups / f"agent-memory-20250101T0000{i:02d}000000Z"
        folder.mkdir(parents=True)
        (folder / "t_001.json").write_text("{}")
    old = time.time() - 40 * 86400
    os.utime(backups / "agent-memory-20250101T000000000000Z", (old, old))
    api, lifespan = await open_api(make_settings(root, BACKUPS_KEEP_LAST="3", ONLYTRADE_SEED_AGENTS="t_001"))
    try:
        assert len(list(backups.iterdir())) == 3  # at boot
        reset = data_of(await api.control("/api/dev/reset-agent", {"trader_id": "t_001", "confirm": "t_001",
                                                                   "reset_stats": True}))
        names = sorted(p.name for p in backups.iterdir())
        assert len(names) == 3 and reset["backup"].endswith(names[-1])  # the new one is kept
        audit = api.ctx.control_audit.tail(1)[-1]
        assert audit["action"] == "dev.reset_agent" and audit["backup"] == reset["backup"]
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)
