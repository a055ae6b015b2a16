"""Runtime and replay control: every action and error code of the reference, plus strict live mode."""

from __future__ import annotations

import pytest

from .conftest import assert_error, data_of, make_settings, open_api
from .live_files import write_live_files

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "path, body, status, code",
    [
        ("/api/agent/runtime/control", {}, 400, "invalid_action"),
        ("/api/agent/runtime/control", {"action": "jump"}, 400, "invalid_action"),
        ("/api/agent/runtime/control", {"action": "set_cycle_ms", "cycle_ms": "soon"}, 400, "invalid_cycle_ms"),
        ("/api/agent/runtime/control", {"action": "set_decision_every_bars"}, 400, "invalid_decision_every_bars"),
        ("/api/replay/runtime/control", {"action": "set_speed", "speed": "fast"}, 400, "invalid_speed"),
        ("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": None}, 400, "invalid_cursor_index"),
        ("/api/replay/runtime/control", {"action": "set_loop", "loop": "true"}, 400, "invalid_loop"),
        ("/api/replay/runtime/control", {"action": "rewind"}, 400, "invalid_action"),
        ("/api/agent/runtime/kill-switch", {"action": "on"}, 400, "invalid_action"),
    ],
)
async def test_control_error_codes(api, path, body, status, code):
    assert_error(await api.control(path, body), status, code)


async def test_control_actions_and_clamps(api):
    rt = data_of(await api.control("/api/agent/runtime/control", {"action": " SET_DECISION_EVERY_BARS ", "decision_every_bars": 999}))
    assert rt["action"] == "set_decision_every_bars" and rt["decision_every_bars"] == 240
    # In replay mode set_cycle_ms converts to bars at the replay speed (0.1 bars/min in these tests).
    rt = data_of(await api.control("/api/agent/runtime/control", {"action": "set_cycle_ms", "cycle_ms": 1_200_000}))
    assert rt["decision_every_bars"] == 2
    replay = data_of(await api.control("/api/replay/runtime/control", {"action": "set_speed", "speed": 5000}))
    assert replay["state"]["speed"] == 1000
    replay = data_of(await api.control("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": 10_000}))
    assert replay["state"]["cursor_index"] == replay["state"]["timeline_length"] - 1
    replay = data_of(await api.control("/api/replay/runtime/control", {"action": "set_loop", "loop": False}))
    assert replay["state"]["loop"] is False
    paused = data_of(await api.control("/api/agent/runtime/control", {"action": "pause"}))
    assert paused["state"]["running"] is False and paused["state"]["paused_reason"] == "manual"


async def test_runtime_control_before_boot_is_503(root):
    from runtime_api.app import create_app
    import httpx

    app = create_app(make_settings(root))  # no lifespan: the runtime has not finished booting
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        from .conftest import TOKEN

        resp = await client.post("/api/agent/runtime/control", json={"action": "pause"}, headers={"x-control-token": TOKEN})
        assert_error(resp, 503, "agent_runtime_unavailable")
        ready = await client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False


async def test_strict_live_mode_never_serves_replay_or_mock(root):
    write_live_files(root, symbols=("600519.SH",))
    handle, lifespan = await open_api(make_settings(root, RUNTIME_DATA_MODE="live_file", STRICT_LIVE_MODE="true"))
    try:
        live = data_of(await handle.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "5m", "limit": 10}))
        assert live["provider"] == "akshare" and live["frames"] and live["frames"][-1]["interval"] == "5m"
        for params in ({"symbol": "300750.SZ", "interval": "1m"}, {"symbol": "300750.SZ", "interval": "5m"},
                       {"symbol": "600519.SH", "interval": "1m", "source": "mock"}):
            assert_error(await handle.get("/api/market/frames", params=params), 503, "live_frames_unavailable")
            assert_error(await handle.get("/api/klines", params=params), 503, "live_frames_unavailable")
        assert_error(await handle.control("/api/replay/runtime/control", {"action": "pause"}), 503, "replay_unavailable")
        status = data_of(await handle.get("/api/replay/runtime/status"))
        assert status["data_mode"] == "live_file" and status["cursor_index"] == -1 and status["live_file"]["frame_count"] > 0
        # Pausing the agents still works in live mode (W21).
        assert data_of(await handle.control("/api/agent/runtime/control", {"action": "pause"}))["state"]["paused_reason"] == "manual"
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_replay_frames_and_klines_from_real_bars(api):
    frames = data_of(await api.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "15m", "limit": 4}))
    assert frames["schema_version"] == "market.frames.v1" and frames["mode"] == "real"
    assert 0 < len(frames["frames"]) <= 4 and all(f["interval"] == "15m" for f in frames["frames"])
    klines = data_of(await api.get("/api/klines", params={"symbol": "600519.SH", "interval": "15m", "limit": 4}))
    assert [k["close"] for k in klines] == [f["bar"]["close"] for f in frames["frames"]]
    assert_error(await api.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "2m"}), 400, "invalid_interval")
    assert_error(await api.get("/api/market/frames", params={"symbol": "../etc", "interval": "1m"}), 400, "invalid_symbol")


async def test_probes_name_every_state_write_problem_as_runtime_status_does(api):
    ctx = api.ctx
    assert (await api.get("/health/ready")).json()["state_write_problems"] == []
    failure = OSError(28, "No space left on device")
    ctx.svc.memory.write_health.failed(failure, "demo_momentum.json")
    ctx.runtime.replay_position_write_health.failed(failure, "replay-position.json")
    ctx.svc.kill_switch.persisted = False
    ctx.runtime.pause_persisted = False
    expected = ["snapshot_saves_failing", "replay_position_saves_failing", "kill_switch_not_persisted", "pause_not_persisted"]
    ready, health = await api.get("/health/ready"), await api.get("/health")
    assert ready.status_code == 503 and ready.json()["state_write_problems"] == expected
    assert health.status_code == 200 and health.json()["state_writes_ok"] is False
    assert health.json()["state_write_problems"] == expected
    assert data_of(await api.get("/api/agent/runtime/status"))["state_writes"]["problems"] == expected
    ctx.svc.memory.write_health.ok()
    assert (await api.get("/health")).json()["state_write_problems"] == expected[1:]


async def test_probes_show_every_control_action_at_once_and_figures_move(api):
    import anyio

    from runtime_api.routes.health import HealthAnswer

    async def health() -> dict:
        return (await api.get("/health")).json()

    assert (await health())["paused_reason"] == "no_running_agents"
    # Each action shows in the very next probe, though probes' figures are kept for a moment.
    data_of(await api.control("/api/agents/demo_momentum/register"))
    data_of(await api.control("/api/agents/demo_momentum/start"))
    running = await health()
    assert running["running"] is True and running["cycle_heartbeat"]["expected"] is True
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    assert (await health())["cycle_heartbeat"]["expected"] is False
    data_of(await api.control("/api/agent/runtime/control", {"action": "pause"}))
    assert (await health())["paused_reason"] == "manual"
    data_of(await api.control("/api/agent/runtime/control", {"action": "resume"}))
    assert (await health())["paused_reason"] is None
    data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "drill"}))
    held = await health()
    assert held["kill_switch_active"] is True and held["paused_reason"] == "kill_switch" and held["running"] is False
    # The figures that move on their own are at most FIGURES_MAX_AGE_S old.
    first = (await health())["clock"]["now_ms"]
    await anyio.sleep(HealthAnswer.FIGURES_MAX_AGE_S + 0.02)
    assert (await health())["clock"]["now_ms"] > first
