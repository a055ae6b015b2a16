"""Resets through the CLI: refused without --confirm, dry runs change nothing, and a reset can be undone."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

from ops_helpers import QUIET_REPLAY, make_root, ops, ops_all, running

AGENTS = ("t_001", "demo_momentum")
PROC_LOCKS = Path("/proc/locks").is_file()  # where the CLI finds the runtime's PID


def state_files(root: Path) -> dict[str, str]:
    """sha256 of every state file (the control audit records dry runs by design, the gate-events log
    whatever the gate did meanwhile; locks are not state)."""
    out = {}
    for dirpath, _, files in os.walk(root / "data"):
        if "replay" in Path(dirpath).relative_to(root).parts:
            continue
        for name in files:
            if name.endswith(".lock") or name in ("control-audit.jsonl", "gate-events.jsonl"):
                continue
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def trade(server) -> None:
    """Set-up through the API itself: two agents with snapshots (the CLI is what the tests exercise)."""
    for agent in AGENTS:
        for verb in ("register", "start"):
            assert server.control(f"/api/agents/{agent}/{verb}").status_code == 200
    for _ in range(2):
        assert server.control("/api/replay/runtime/control", {"action": "step", "bars": 5}).status_code == 200


def test_refusals_and_dry_runs_change_nothing(server):
    trade(server)
    before = state_files(server.root)
    assert "data/agent-memory/t_001.json" in before

    refused_factory, refused_agent, dry_factory, dry_agent = ops_all([
        ("factory-reset", "--warmup"),
        ("agent-reset", "t_001", "--full"),
        ("--json", "factory-reset", "--cursor", "3", "--dry-run"),
        ("--json", "agent-reset", "t_001", "--positions-only", "--confirm", "--dry-run"),
    ], root=server.root, base=server.base)

    assert refused_factory.code == 2, refused_factory
    assert "refused without --confirm" in refused_factory.err and "EVERY agent" in refused_factory.err
    assert refused_agent.code == 2, refused_agent
    assert "refused without --confirm" in refused_agent.err and "t_001" in refused_agent.err

    assert dry_factory.code == 0, dry_factory
    plan = dry_factory.json()
    assert plan["dry_run"] is True and plan["cursor_index"] == 3
    assert {a["trader_id"] for a in plan["would_reset"]["agents"]} == set(AGENTS)
    assert dry_agent.code == 0, dry_agent
    plan = dry_agent.json()
    assert plan["dry_run"] is True and plan["reset_positions"] is True and plan["reset_memory"] is False
    assert plan["would_reset"]["trader_id"] == "t_001"

    assert state_files(server.root) == before
    assert not (server.root / "data" / "backups").exists()


def test_factory_reset_with_confirm_backs_up_and_pauses(server):
    trade(server)
    root = server.root
    before = {a: (root / "data" / "agent-memory" / f"{a}.json").read_bytes() for a in AGENTS}
    ran = ops("--json", "factory-reset", "--warmup", "--confirm", root=root, base=server.base)
    assert ran.code == 0, ran
    result = ran.json()
    assert result["dry_run"] is False and result["cursor_index"] == 119
    assert result["state"]["runtime"]["paused_reason"] == "after_reset"
    backup = root / result["backup"]
    assert {p.name: p.read_bytes() for p in backup.iterdir()} == {f"{a}.json": before[a] for a in AGENTS}
    with server.client() as c:
        assert c.get("/api/agent/runtime/status").json()["data"]["running"] is False
        assert c.get("/api/replay/runtime/status").json()["data"]["cursor_index"] == 119


def test_agent_reset_then_restore_backup_brings_the_file_back_byte_for_byte(tmp_path):
    root = make_root(tmp_path / "root")
    snapshot = root / "data" / "agent-memory" / "t_001.json"
    other = root / "data" / "agent-memory" / "demo_momentum.json"
    with running(root, QUIET_REPLAY) as server:
        trade(server)
        original, other_before = snapshot.read_bytes(), other.read_bytes()

        ran = ops("--json", "agent-reset", "t_001", "--full", "--confirm", root=root, base=server.base)
        assert ran.code == 0, ran
        backup = ran.json()["backup"]
        assert "restore-backup" in ran.err  # the undo hint
        assert snapshot.read_bytes() != original and other.read_bytes() == other_before

        refused = ops("restore-backup", backup, "--confirm", root=root)
        assert refused.code == 2, refused
        assert "runtime is running" in refused.err
        assert str(server.proc.pid) in refused.err or not PROC_LOCKS
        assert snapshot.read_bytes() != original

        dry = ops("--json", "restore-backup", backup, "--dry-run", root=root)
        assert dry.code == 0, dry
        assert [(f["agent_id"], f["action"]) for f in dry.json()["files"]] == [("t_001", "replace")]
        assert dry.json()["runtime_pids"] == ([server.proc.pid] if PROC_LOCKS else None)

        unconfirmed = ops("restore-backup", backup, root=root)
        assert unconfirmed.code == 2 and "replace data/agent-memory/t_001.json" in unconfirmed.err, unconfirmed
        after_reset = snapshot.read_bytes()
        assert server.stop(signal.SIGTERM) == 0

    ran = ops("--json", "restore-backup", backup, "--confirm", root=root)
    assert ran.code == 0, ran
    assert snapshot.read_bytes() == original
    assert other.read_bytes() == other_before
    assert ran.json()["restored"] == ["t_001"]
    assert (root / ran.json()["pre_restore_backup"] / "t_001.json").read_bytes() == after_reset

    again = ops("--json", "restore-backup", Path(backup).name, "--confirm", root=root)  # by folder name: idempotent
    assert again.code == 0 and again.json()["restored"] == [], again

    with running(root, QUIET_REPLAY) as server, server.client() as c:  # the runtime serves the restored snapshot
        assert c.get("/api/agent/memory", params={"trader_id": "t_001"}).json()["data"]["stats"]["decisions"] == 2
