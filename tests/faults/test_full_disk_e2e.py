"""A real runtime whose state directories sit on a small tmpfs that fills up (ENOSPC).

Safety actions (kill switch on, pause) hold in memory and say `persisted: false`; actions that
release or destroy (kill switch off, resume, resets) write first and are refused with nothing
changed; /health/ready and preflight fail while snapshot saves fail; after the disk is freed the
held state reaches the disk, and a SIGKILL plus restart finds it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from tests.e2e.server import RuntimeProcess


def _state_env(disk) -> dict[str, str]:
    d = disk.path
    return {
        "RUNTIME_STATE_DIR": str(d / "runtime"), "KILL_SWITCH_PATH": str(d / "runtime" / "kill-switch.json"),
        "AGENT_MEMORY_DIR": str(d / "agent-memory"), "DECISIONS_DIR": str(d / "decisions"),
        "DECISION_AUDIT_BASE_DIR": str(d / "audit"), "BACKUPS_DIR": str(d / "backups"),
        "AGENT_REGISTRY_PATH": str(d / "agents" / "registry.json"),
        "ONLYTRADE_SEED_AGENTS": "demo_momentum,demo_reversion", "REPLAY_SPEED": "0.1",
    }


def _data(resp: httpx.Response):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def _refused(resp: httpx.Response) -> dict:
    assert resp.status_code == 507, resp.text
    body = resp.json()
    assert body["success"] is False and body["error"] == "state_write_failed"
    assert "ENOSPC" in body["message"]
    return body


def _ops_status(server) -> str:
    """`onlytrade-ops status` as the operator runs it, against this runtime."""
    ops = shutil.which("onlytrade-ops", path=str(Path(sys.executable).parent))
    env = {"PATH": os.environ.get("PATH", ""), "ONLYTRADE_API_BASE": server.base, "COLUMNS": "200"}
    proc = subprocess.run([ops, "status"], env=env, cwd=server.root, capture_output=True, text=True, timeout=60)
    return proc.stdout


def _wait(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except FileNotFoundError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_full_disk_keeps_the_operator_in_control(root, small_disk):
    env = _state_env(small_disk)
    server = RuntimeProcess(root, env).start()
    try:
        c = server.client()
        _data(server.control("/api/replay/runtime/control", {"action": "pause"}))
        step = _data(server.control("/api/agent/runtime/control", {"action": "step"}))
        assert step["cycle"]["ran"] is True
        snapshot_before = (small_disk.path / "agent-memory" / "demo_momentum.json").read_bytes()
        assert c.get("/health/ready").status_code == 200

        small_disk.fill()
        # A round's first write is the replay position: it fails, so no snapshot can get ahead of the
        # replay; the round holds, and readiness and preflight fail with errno and file.
        held = _data(server.control("/api/agent/runtime/control", {"action": "step"}))
        assert held["cycle"]["ran"] is False and held["cycle"]["reason"] == "replay_position_unsaved"
        ready = c.get("/health/ready")
        assert ready.status_code == 503 and "replay_position_saves_failing" in ready.json()["state_write_problems"]
        assert c.get("/health").status_code == 200  # liveness: a restart would not free the disk
        writes = _data(c.get("/api/agent/runtime/status"))["state_writes"]
        assert writes["replay_position"]["last_error"]["errno"] == "ENOSPC"
        assert "replay-position" in writes["replay_position"]["last_error"]["file"]
        shown = _ops_status(server)
        assert "FAILING replay_position_saves_failing" in shown and "ENOSPC" in shown
        preflight = _data(c.get("/api/ops/live-preflight"))["checks"]["state_writes"]
        assert preflight["level"] == "FAIL" and "replay_position_saves_failing" in preflight["reason"]

        # Pause holds in memory and says it is not persisted; resume is refused and changes nothing.
        paused = _data(server.control("/api/agent/runtime/control", {"action": "pause"}))
        assert paused["persisted"] is False and paused["state"]["paused_reason"] == "manual"
        _refused(server.control("/api/agent/runtime/control", {"action": "resume"}))
        assert _data(c.get("/api/agent/runtime/status"))["paused_reason"] == "manual"

        # Kill switch on: in memory at once, persisted false, loud warning. Off: refused.
        on = _data(server.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "disk-full-drill"}))
        assert on["persisted"] is False and on["kill_switch"]["active"] is True
        assert "KILL SWITCH IS ON IN MEMORY ONLY" in server.read_log()
        _refused(server.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
        status = _data(c.get("/api/agent/runtime/status"))
        assert status["kill_switch"]["active"] is True and status["kill_switch"]["reason"] == "disk-full-drill"
        assert set(status["state_writes"]["problems"]) >= {"kill_switch_not_persisted", "pause_not_persisted"}
        flag = small_disk.path / "runtime" / "KILL_SWITCH"
        flag.touch()  # the runbook's fallback works on the full disk: an empty file needs no free block
        assert flag.exists()
        flag.unlink()

        # Registry changes and resets are refused with nothing changed (the backup is the first write).
        _refused(server.control("/api/agents/demo_reversion/stop"))
        assert _data(c.get("/api/agents/registered"))[1]["status"] == "running"
        _refused(server.control("/api/dev/factory-reset", {"confirm": "RESET"}))
        _refused(server.control("/api/dev/reset-agent", {"trader_id": "demo_momentum", "confirm": "demo_momentum",
                                                         "reset_memory": True}))
        assert (small_disk.path / "agent-memory" / "demo_momentum.json").read_bytes() == snapshot_before
        assert not list((small_disk.path / "backups").glob("agent-memory-*/"))

        # Disk freed: the held kill switch and pause reach the disk on their own.
        small_disk.free()
        _wait(lambda: orjson.loads((small_disk.path / "runtime" / "kill-switch.json").read_bytes()).get("active") is True)
        _wait(lambda: _data(c.get("/api/agent/runtime/status"))["state_writes"]["kill_switch"]["persisted"])
        assert orjson.loads((small_disk.path / "runtime" / "runtime-pause.json").read_bytes())["paused_reason"] == "manual"
        # Readiness recovers with no cycle running (paused, kill switch): the snapshot dir takes writes.
        _wait(lambda: c.get("/health/ready").status_code == 200)
        assert "state writes recovered kind=replay_position" in server.read_log()
        c.close()
    finally:
        server.stop(signal.SIGKILL)

    with RuntimeProcess(root, env, port=server.port) as again, again.client() as c:
        status = _data(c.get("/api/agent/runtime/status"))
        assert status["kill_switch"]["active"] is True and status["kill_switch"]["reason"] == "disk-full-drill"
        assert status["paused_reason"] == "kill_switch"
        assert status["state_writes"]["ok"] is True and c.get("/health/ready").status_code == 200
        # Now the writes land, and off and resume work.
        _data(again.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
        resumed = _data(again.control("/api/agent/runtime/control", {"action": "resume"}))
        assert resumed["state"]["paused_reason"] != "manual"
        assert not [p for p in small_disk.path.rglob("*.tmp")]


def test_failing_snapshot_saves_fail_readiness(root, small_disk):
    """Only the snapshots fill their disk (the runtime state dir has room): the round runs, its
    snapshot saves fail, and readiness and preflight say so with errno and file until they recover."""
    env = {**_state_env(small_disk), "RUNTIME_STATE_DIR": str(root / "state"),
           "KILL_SWITCH_PATH": str(root / "state" / "kill-switch.json")}
    with RuntimeProcess(root, env) as server, server.client() as c:
        _data(server.control("/api/replay/runtime/control", {"action": "pause"}))
        assert _data(server.control("/api/agent/runtime/control", {"action": "step"}))["cycle"]["ran"] is True
        small_disk.fill()
        assert _data(server.control("/api/agent/runtime/control", {"action": "step"}))["cycle"]["ran"] is True
        ready = c.get("/health/ready")
        assert ready.status_code == 503 and "snapshot_saves_failing" in ready.json()["state_write_problems"]
        writes = _data(c.get("/api/agent/runtime/status"))["state_writes"]
        assert writes["snapshots"]["last_error"]["errno"] == "ENOSPC"
        assert writes["snapshots"]["last_error"]["file"].startswith((".demo_", "demo_"))
        preflight = _data(c.get("/api/ops/live-preflight"))["checks"]["state_writes"]
        assert preflight["level"] == "FAIL" and "snapshot_saves_failing" in preflight["reason"]
        small_disk.free()
        _wait(lambda: c.get("/health/ready").status_code == 200)
        assert "state writes recovered kind=snapshots" in server.read_log()
