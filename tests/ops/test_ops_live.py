"""live_file mode: pause/resume/step without the replay (W21), the kill switch, freshness, the probe, stream-monitor."""

from __future__ import annotations

import io

import pytest
from api.live_files import write_live_files
from ops_helpers import TOKEN, closed_base, make_root, ops, ops_all, running
from rich.console import Console

from ops import control, stream
from ops.client import Client
from ops.render import render


def api(server) -> Client:
    return Client(server.base, TOKEN, token_source="test")


def rendered(outcome) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    render(console, outcome.view, outcome.data)
    return console.file.getvalue()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = make_root(tmp_path_factory.mktemp("ops-live"))
    write_live_files(root)
    with running(root, {"RUNTIME_DATA_MODE": "live_file"}) as server:
        for verb in ("register", "start"):
            assert server.control(f"/api/agents/t_001/{verb}").status_code == 200
        yield server


def test_pause_and_resume_succeed_in_live_file_mode(live):
    ran = ops("--json", "pause", root=live.root, base=live.base)
    assert ran.code == 0, ran
    paused = ran.json()
    assert paused["replay"]["skipped"] is True and paused["replay"]["reason"] == "replay_unavailable"
    assert paused["agent_runtime"]["state"]["paused_reason"] == "manual"
    assert paused["status"]["runtime"]["paused_reason"] == "manual"
    assert "replay_unavailable" in ran.err  # the note goes to stderr under --json

    with api(live) as c:  # the function, called directly
        assert "skipped (live_file mode)" in rendered(control.pause(c))

    ran = ops("--json", "resume", root=live.root, base=live.base)
    assert ran.code == 0, ran
    resumed = ran.json()
    assert resumed["replay"]["skipped"] is True
    assert resumed["status"]["runtime"]["paused_reason"] != "manual"


def test_step_runs_one_decision_cycle_in_live_file_mode(live):
    ran = ops("--json", "step", root=live.root, base=live.base)
    step = ran.json()
    assert step["mode"] == "live_file" and step["bars"] is None
    # Whether an agent decided depends on the session gate (wall clock); a step that ran nothing exits 1.
    assert ran.code == (0 if step["cycle"]["ran"] else 1), ran
    if not step["cycle"]["ran"]:
        assert "step ran no decision cycle" in ran.err


def test_kill_switch_on_blocks_resume_and_off_reports_other_sources(live):
    on = ops("--json", "kill-on", "drill-42", root=live.root, base=live.base)
    assert on.code == 0, on
    assert on.json()["kill_switch"]["active"] is True and on.json()["kill_switch"]["reason"] == "drill-42"

    blocked, status = ops_all([("resume",), ("--json", "status")], root=live.root, base=live.base)
    assert blocked.code == 1 and "kill_switch_active" in blocked.err, blocked
    assert status.json()["runtime"]["kill_switch"]["active"] is True

    flag = live.root / "data" / "runtime" / "KILL_SWITCH"
    flag.touch()
    try:
        off = ops("kill-off", root=live.root, base=live.base)
        assert off.code == 1, off
        assert "still active from: file" in off.out and "data/runtime/KILL_SWITCH" in off.out
    finally:
        flag.unlink()
    off = ops("--json", "kill-off", root=live.root, base=live.base)
    assert off.code == 0, off
    assert off.json()["kill_switch"]["active"] is False


def test_check_live_freshness_strict_exit_codes(live, tmp_path):
    fresh, fresh_strict, empty, empty_strict = ops_all([("--json", "check-live-freshness"), ("check-live-freshness", "--strict")],
                                                       root=live.root) + \
        ops_all([("--json", "check-live-freshness"), ("check-live-freshness", "--strict")], root=tmp_path)
    assert fresh.code == 0 and fresh.json()["ok"] is True, fresh
    assert fresh_strict.code == 0, fresh_strict
    assert empty.code == 0 and empty.json()["ok"] is False, empty  # reported, not failed, without --strict
    assert empty_strict.code == 1 and "file_not_found" in empty_strict.out, empty_strict


def test_health_restart_probe(live, tmp_path):
    healthy, down = ops("--json", "health-restart-probe", root=live.root, base=live.base), \
        ops("--json", "health-restart-probe", root=tmp_path, base=closed_base())
    assert healthy.code == 0, healthy
    report = healthy.json()
    assert report["healthy"] is True and report["listener_count"] >= 1 and report["listener_source"] in ("proc", "ss")
    assert report["runtime_pids"] in (None, [live.proc.pid])
    assert down.code == 1, down  # never 3: unreachable is the unhealthy verdict systemd acts on
    assert down.json()["healthy"] is False and down.json()["listener_count"] == 0


def test_stream_monitor_reports_instead_of_crashing(live):
    ran = ops("--json", "stream-monitor", "t_001", "3", root=live.root, base=live.base, timeout=30)
    assert ran.code in (0, 1), ran
    report = ran.json()
    assert report["room_id"] == "t_001" and "sse" in report and "packet" in report
    if not report["packet"]["ok"]:  # the room routes may not exist yet on this runtime
        assert ran.code == 1 and report["packet"]["status"] == 404
    with api(live) as c:
        direct = stream.monitor(c, "t_001", 3, sse_seconds=2.0)
    assert direct.code == ran.code and "room t_001" in rendered(direct)
