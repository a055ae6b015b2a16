"""Restart continuity through the CLI: snapshot, SIGTERM, restart, snapshot, verify; then a real change is caught."""

from __future__ import annotations

import io
import signal

from ops_helpers import QUIET_REPLAY, make_root, ops, running
from rich.console import Console

from ops.continuity import SCHEMA, compare, verify
from ops.render import render


def test_restart_keeps_continuity_and_a_decision_is_reported(tmp_path):
    root = make_root(tmp_path / "root")
    a, b, c = (tmp_path / f"{n}.json" for n in "abc")
    with running(root, QUIET_REPLAY) as server:
        port = server.port
        for agent in ("t_001", "demo_momentum"):
            for verb in ("register", "start"):
                assert server.control(f"/api/agents/{agent}/{verb}").status_code == 200
        assert server.control("/api/replay/runtime/control", {"action": "step", "bars": 3}).status_code == 200
        ran = ops("--json", "continuity-snapshot", str(a), root=root, base=server.base)
        assert ran.code == 0, ran
        snap = ran.json()
        assert set(snap["files"]) == {"t_001.json", "demo_momentum.json"}
        assert snap["runtime"]["registry"]["t_001"]["status"] == "running"
        assert set(snap["runtime"]["equity"]) == {"t_001", "demo_momentum"}
        assert server.stop(signal.SIGTERM) == 0

    offline = ops("--json", "continuity-snapshot", root=root, base=server.base)
    assert offline.code == 0 and offline.json()["runtime"]["reachable"] is False, offline  # files only, still useful

    with running(root, QUIET_REPLAY, port=port) as server:
        assert ops("continuity-snapshot", str(b), root=root, base=server.base).code == 0
        same = ops("continuity-verify", str(a), str(b), root=root)
        assert same.code == 0, same
        assert "no change" in same.out

        stepped = ops("--json", "step", root=root, base=server.base)
        assert stepped.code == 0 and stepped.json()["cycle"]["ran"] is True, stepped
        assert ops("continuity-snapshot", str(c), root=root, base=server.base).code == 0

    changed = ops("--json", "continuity-verify", str(b), str(c), root=root)
    assert changed.code == 1, changed
    diff = changed.json()
    assert diff["changed"] is True
    assert {f["file"] for f in diff["files"]["changed"]} == {"t_001.json", "demo_momentum.json"}
    assert diff["registry"] == {"added": [], "removed": [], "changed": []}
    direct = compare(b, c)  # the function behind the command
    assert direct.code == 1 and direct.data["files"] == diff["files"]
    console = Console(file=io.StringIO(), width=160, color_system=None)
    render(console, direct.view, direct.data)
    assert "file changed" in console.file.getvalue() and "CHANGED" in console.file.getvalue()


def _snap(files: dict, runtime: dict | None = None) -> dict:
    return {"schema_version": SCHEMA, "files": {k: {"sha256": v, "size": len(v), "mtime_epoch": 1.0} for k, v in files.items()},
            "runtime": runtime or {"reachable": False}}


def test_verify_compares_content_registry_and_equity_not_mtimes():
    base = _snap({"t_001.json": "aa", "t_002.json": "bb"},
                 {"reachable": True, "registry": {"t_001": {"status": "running"}}, "equity": {"t_001": 100000}})
    moved = _snap({"t_001.json": "aa", "t_002.json": "bb"},
                  {"reachable": True, "registry": {"t_001": {"status": "running"}}, "equity": {"t_001": 100000}})
    moved["files"]["t_001.json"]["mtime_epoch"] = 99.0
    assert verify(base, moved)["changed"] is False

    other = _snap({"t_001.json": "ax", "t_003.json": "cc"},
                  {"reachable": True, "registry": {"t_001": {"status": "stopped"}, "t_003": {"status": "running"}},
                   "equity": {"t_001": 99000.5}})
    diff = verify(base, other)
    assert diff["changed"] is True
    assert diff["files"]["added"] == ["t_003.json"] and diff["files"]["removed"] == ["t_002.json"]
    assert [f["file"] for f in diff["files"]["changed"]] == ["t_001.json"]
    assert diff["registry"]["added"] == ["t_003"]
    assert diff["registry"]["changed"] == [{"agent_id": "t_001", "fields": {"status": ["running", "stopped"]}}]
    assert diff["equity"] == [{"agent_id": "t_001", "a": 100000, "b": 99000.5}]

    offline = verify(base, _snap({"t_001.json": "aa", "t_002.json": "bb"}))
    assert offline["changed"] is False and offline["registry"] is None
    assert "not reachable for B" in offline["notes"][0]
