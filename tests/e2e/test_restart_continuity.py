"""A real runtime process: agents decide, state hits the disk, SIGKILL loses nothing acknowledged."""

from __future__ import annotations

import signal

import orjson

from .server import RuntimeProcess

DEMO_ENV = {"AGENT_FLAT_ENTRY_ENABLED": "true", "AGENT_FLAT_ENTRY_MIN_CYCLES": "1", "REPLAY_SPEED": "60"}
AGENTS = ["demo_momentum", "t_001"]


def data(resp):
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True, body
    return body["data"]


def test_agents_trade_and_state_survives_sigkill(root):
    server = RuntimeProcess(root, DEMO_ENV).start()
    try:
        with server.client() as c:
            assert data(c.get("/api/agents/registered")) == []
            # Replay paused: only our steps drive cycles, so each acknowledged step is the whole truth.
            data(server.control("/api/replay/runtime/control", {"action": "pause"}))
            for agent_id in AGENTS:
                assert data(server.control(f"/api/agents/{agent_id}/register"))["status"] == "stopped"
                assert data(server.control(f"/api/agents/{agent_id}/start"))["status"] == "running"

            positions = []
            for _ in range(20):
                step = data(server.control("/api/replay/runtime/control", {"action": "step", "bars": 5}))
                assert step["cycle"]["ran"] is True
                positions = data(c.get("/api/positions", params={"trader_id": "demo_momentum"}))
                if positions:
                    break
            assert positions, "demo_momentum never opened a position on the replay data"
            assert positions[0]["quantity"] >= 100 and positions[0]["side"] == "LONG"

            decisions = data(c.get("/api/decisions/latest", params={"trader_id": "t_001", "limit": 3}))
            assert decisions and decisions[0]["decisions"][0]["order_id"].startswith("ord_")
            for agent_id in AGENTS:
                assert (root / "data" / "agent-memory" / f"{agent_id}.json").is_file()
                assert list((root / "data" / "decisions" / agent_id).glob("*.jsonl"))
                assert list((root / "data" / "audit" / "decision_audit" / agent_id).glob("*.jsonl"))

            acknowledged = {
                "registered": data(c.get("/api/agents/registered")),
                "memory": {a: data(c.get("/api/agent/memory", params={"trader_id": a})) for a in AGENTS},
                "account": {a: data(c.get("/api/account", params={"trader_id": a})) for a in AGENTS},
                "files": {a: (root / "data" / "agent-memory" / f"{a}.json").read_bytes() for a in AGENTS},
            }
            assert acknowledged["account"]["demo_momentum"]["position_count"] >= 1
    finally:
        server.stop(signal.SIGKILL)

    server = RuntimeProcess(root, {**DEMO_ENV, "AGENT_DECISION_EVERY_BARS": "240"}, port=server.port).start()
    try:
        with server.client() as c:
            data(server.control("/api/agent/runtime/control", {"action": "pause"}))
            assert data(c.get("/api/agents/registered")) == acknowledged["registered"]
            for a in AGENTS:
                assert (root / "data" / "agent-memory" / f"{a}.json").read_bytes() == acknowledged["files"][a]
                assert data(c.get("/api/agent/memory", params={"trader_id": a})) == acknowledged["memory"][a]
                assert data(c.get("/api/account", params={"trader_id": a})) == acknowledged["account"][a]
            # Cycle numbers continue from the snapshot instead of restarting at 1.
            before = acknowledged["memory"]["t_001"]["stats"]["decisions"]
            step = data(server.control("/api/agent/runtime/control", {"action": "step"}))
            numbers = {d["trader_id"]: d["cycle_number"] for d in step["cycle"]["decisions"]}
            assert numbers["t_001"] == before + 1
    finally:
        assert server.stop(signal.SIGTERM) == 0


def test_registry_file_is_node_compatible(root):
    with RuntimeProcess(root) as server:
        data(server.control("/api/agents/t_003/register"))
    raw = orjson.loads((root / "data" / "agents" / "registry.json").read_bytes())
    assert raw["schema_version"] == "agent.registry.v1"
    assert set(raw["agents"]["t_003"]) == {"registered_at", "status", "show_in_lobby", "last_started_at", "last_stopped_at"}
