"""Real processes on the shipped pack: the show trades, says so in its log, and its replay position
survives restarts (SIGKILL and SIGTERM) so snapshots and replay time agree; a factory reset rewinds it."""

from __future__ import annotations

import signal
import time

import orjson

from .server import RuntimeProcess

POOLED = ["demo_momentum", "demo_reversion", "t_001", "t_002", "t_003", "t_004"]


def data(resp):
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True, body
    return body["data"]


def decisions(root, agent_id: str) -> list[dict]:
    rows = []
    for path in sorted((root / "data/decisions" / agent_id).glob("*.jsonl")):
        rows += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return rows


def snapshot_replay(root, agent_id: str) -> dict:
    return orjson.loads((root / "data/agent-memory" / f"{agent_id}.json").read_bytes())["replay"]


def test_an_accelerated_replay_fills_for_every_pooled_agent_and_logs_each_round(root):
    env = {"ONLYTRADE_SEED_AGENTS": "all", "AGENT_FLAT_ENTRY_ENABLED": "true", "REPLAY_SPEED": "1000"}
    with RuntimeProcess(root, env) as server:
        deadline = time.monotonic() + 60
        unfilled = set(POOLED)
        while unfilled and time.monotonic() < deadline:
            time.sleep(0.5)
            unfilled = {a for a in unfilled if not any(d["decisions"][0]["executed"] for d in decisions(root, a))}
        assert not unfilled, f"no fill for {sorted(unfilled)} in 60 s of accelerated replay"
        with server.client() as c:
            for agent_id in POOLED:
                assert data(c.get("/api/account", params={"trader_id": agent_id}))["position_count"] >= 1
    rounds = [line for line in server.read_log().splitlines() if " INFO onlytrade.runtime round " in line]
    assert rounds, server.read_log()[-2000:]
    assert "8 agents decided" in rounds[-1] and " fills" in rounds[-1] and "replay 2026-02-" in rounds[-1]


def test_replay_position_survives_sigkill_and_sigterm_and_factory_reset_rewinds_it(root):
    env = {"AGENT_FLAT_ENTRY_ENABLED": "true", "AGENT_FLAT_ENTRY_MIN_CYCLES": "1", "AGENT_DECISION_EVERY_BARS": "5"}
    server = RuntimeProcess(root, env).start()
    try:
        data(server.control("/api/replay/runtime/control", {"action": "pause"}))
        for agent_id in ("demo_momentum", "t_001"):
            data(server.control(f"/api/agents/{agent_id}/register"))
            data(server.control(f"/api/agents/{agent_id}/start"))
        data(server.control("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": 240 + 100}))
        step = data(server.control("/api/replay/runtime/control", {"action": "step", "bars": 5}))
        assert step["state"]["cursor_index"] == 345 and step["state"]["trading_day"] == "2026-02-13"
    finally:
        server.stop(signal.SIGKILL)

    # 1. SIGKILL with the replay paused: exactly the bar the last snapshots were decided on, still paused.
    server = RuntimeProcess(root, env, port=server.port).start()
    try:
        with server.client() as c:
            status = data(c.get("/api/replay/runtime/status"))
        assert (status["cursor_index"], status["trading_day"], status["running"]) == (345, "2026-02-13", False)
        for agent_id in ("demo_momentum", "t_001"):
            assert snapshot_replay(root, agent_id)["bar_cursor"] == 345
        # 2. Running fast, then SIGKILL mid-show: the replay resumes within one round of the snapshots.
        data(server.control("/api/replay/runtime/control", {"action": "set_speed", "speed": 600}))
        data(server.control("/api/replay/runtime/control", {"action": "resume"}))
        deadline = time.monotonic() + 30
        while snapshot_replay(root, "t_001")["bar_cursor"] < 365 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.stop(signal.SIGKILL)
    server = RuntimeProcess(root, env, port=server.port).start()
    try:
        with server.client() as c:
            data(server.control("/api/agent/runtime/control", {"action": "pause"}))  # no more rounds while we look
            status = data(c.get("/api/replay/runtime/status"))
        assert status["running"] is True and status["trading_day"] == "2026-02-13"
        for agent_id in ("demo_momentum", "t_001"):
            snap = snapshot_replay(root, agent_id)
            assert snap["trading_day"] == status["trading_day"]
            # The position is saved as each round starts; the replay keeps ticking while its agents
            # decide (10 bars/s here), so a snapshot can be a few bars past it, or one round behind.
            assert abs(snap["bar_cursor"] - status["cursor_index"]) <= 40, (snap, status["cursor_index"])
        assert status["cursor_index"] >= 365 - 40
        # 3. SIGTERM: the cursor at shutdown is kept (the pause and resume went to disk too).
        data(server.control("/api/replay/runtime/control", {"action": "pause"}))
        data(server.control("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": 400}))
    finally:
        assert server.stop(signal.SIGTERM) == 0
    server = RuntimeProcess(root, env, port=server.port).start()
    try:
        with server.client() as c:
            status = data(c.get("/api/replay/runtime/status"))
            assert (status["cursor_index"], status["running"]) == (400, False)
            # 4. A factory reset rewinds the replay, and a restart does not undo it.
            reset = data(server.control("/api/dev/factory-reset", {"confirm": "RESET", "use_warmup": True}))
            assert reset["state"]["replay"]["cursor_index"] == 119
    finally:
        server.stop(signal.SIGKILL)
    server = RuntimeProcess(root, env, port=server.port).start()
    try:
        with server.client() as c:
            status = data(c.get("/api/replay/runtime/status"))
        assert (status["cursor_index"], status["trading_day"], status["day_bar_index"]) == (119, "2026-02-10", 120)
        assert status["running"] is False
        saved = orjson.loads((root / "data/runtime/replay-position.json").read_bytes())
        assert saved["cursor_index"] == 119 and saved["trading_day"] == "2026-02-10"
    finally:
        assert server.stop(signal.SIGTERM) == 0


def test_a_corrupt_or_foreign_replay_position_starts_at_the_warmup_cursor(root):
    state = root / "data/runtime"
    state.mkdir(parents=True)
    (state / "replay-position.json").write_bytes(b"{torn")
    with RuntimeProcess(root, {"REPLAY_SPEED": "0.1"}) as server, server.client() as c:
        assert data(c.get("/api/replay/runtime/status"))["cursor_index"] == 119
    assert "unreadable replay-position.json" in server.read_log()
    (state / "replay-position.json").write_bytes(orjson.dumps({"cursor_index": 5, "current_ts_ms": 123}))
    with RuntimeProcess(root, {"REPLAY_SPEED": "0.1"}, port=server.port) as server, server.client() as c:
        assert data(c.get("/api/replay/runtime/status"))["cursor_index"] == 119
    assert "not in this replay pack" in server.read_log()
