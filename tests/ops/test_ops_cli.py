"""The installed CLI against a real runtime: every exit code, --json, token discovery, the token never printed.
The functions behind the commands are also called directly against the same runtime, and every view rendered."""

from __future__ import annotations

import io

import orjson
import pytest
from ops_helpers import TOKEN, closed_base, ops, ops_all
from rich.console import Console

from ops import control, reads, resets, stream
from ops.client import Client
from ops.render import VIEWS, render

UNREACHABLE = [("health",), ("pause",), ("live-preflight",)]

USAGE_ERRORS = [
    (("no-such-command",), "No such command"),
    (("set-loop", "maybe"), "expected on or off"),
    (("agent-reset", "t_001", "--confirm"), "exactly one of --full, --positions-only, --stats-only"),
    (("agent-register", "Bad/Id"), "invalid agent id"),
    (("continuity-verify", "missing-a.json", "missing-b.json"), "no such file"),
]


@pytest.fixture(scope="module")
def api(server):
    """The plain functions' client, pointed at the module's runtime."""
    with Client(server.base, TOKEN, token_source="test") as c:
        assert server.control("/api/agents/demo_momentum/register").status_code == 200
        assert server.control("/api/agents/demo_momentum/start").status_code == 200
        yield c


def test_health_and_status_exit_0_with_tables_and_json(server):
    table, as_json = ops_all([("health",), ("status", "--json")], root=server.root, base=server.base)  # --json may follow
    assert table.code == 0 and "uptime_s" in table.out, table
    assert as_json.code == 0, as_json
    status = as_json.json()
    assert status["health"]["ok"] is True
    assert status["runtime"]["kill_switch"]["active"] is False
    assert status["replay"]["data_mode"] == "replay"


def test_unreachable_runtime_exits_3(tmp_path):
    for args, ran in zip(UNREACHABLE, ops_all([("--json", *a) for a in UNREACHABLE], root=tmp_path, base=closed_base())):
        assert ran.code == 3, (args, ran)
        assert ran.json()["exit_code"] == 3
        assert "cannot reach the runtime" in ran.err


def test_usage_errors_exit_2_before_any_call(tmp_path):
    # Nothing listens on the base: a usage error must never get as far as calling it.
    for (args, needle), ran in zip(USAGE_ERRORS, ops_all([a for a, _ in USAGE_ERRORS], root=tmp_path, base=closed_base())):
        assert ran.code == 2, (args, ran)
        assert needle in ran.err, (args, ran)


def test_failed_checks_and_api_errors_exit_1(server):
    preflight, not_registered, no_memory = ops_all(
        [("--json", "live-preflight"), ("agent-start", "t_004"), ("--json", "memory", "t_004")], root=server.root, base=server.base)
    assert preflight.code == 1, preflight  # replay mode is never ready to go live
    report = preflight.json()
    assert report["ok"] is False and report["checks"]["data_mode"]["level"] == "FAIL"
    assert "preflight not ok: FAIL data_mode" in preflight.err

    assert not_registered.code == 1 and "HTTP 409 agent_not_registered" in not_registered.err, not_registered
    assert no_memory.code == 1, no_memory
    assert no_memory.json()["error"] == "memory_not_found" and no_memory.json()["detail"]["status"] == 404


def test_wrong_or_missing_token_exits_1_and_the_token_is_never_printed(server, tmp_path):
    wrong, missing = (ops("agent-register", "t_002", root=tmp_path, base=server.base, token=t)
                      for t in ("wrong-token-but-secret-too", None))
    assert wrong.code == 1, wrong
    assert "unauthorized_control_token" in wrong.err and "ONLYTRADE_CONTROL_TOKEN was refused" in wrong.err
    assert "wrong-token-but-secret-too" not in wrong.out + wrong.err
    assert missing.code == 1, missing
    assert "no control token found" in missing.err


def test_token_and_port_are_discovered_from_the_runtime_env_local(server, tmp_path):
    (tmp_path / ".env.local").write_text(f"# the runtime's file\nCONTROL_API_TOKEN={TOKEN}\nPORT={server.port}\n")
    ran = ops("--json", "agent-register", "t_002", root=tmp_path, base=None, token=None)
    assert ran.code == 0, ran
    assert ran.json()["agent_id"] == "t_002"
    ran = ops("--json", "agent-unregister", "t_002", root=tmp_path, base=None, token=None)
    assert ran.code == 0 and ran.json()["removed"] is True, ran


def test_read_and_control_commands_through_the_cli(server, api):
    stepped = ops("--json", "step", "2", root=server.root, base=server.base)
    assert stepped.code == 0 and stepped.json()["mode"] == "replay" and stepped.json()["cycle"]["ran"] is True, stepped
    rest = ops_all([
        ("--json", "agents-registered"), ("agents-available",), ("--json", "decisions", "demo_momentum", "3"),
        ("memory", "demo_momentum"), ("--json", "set-speed", "0.1"), ("--json", "set-loop", "off"), ("--json", "set-cadence", "240"),
        ("--json", "audit", "5"), ("--json", "decisions", "1"), ("--json", "watch", "0.1", "-n", "2"),
    ], root=server.root, base=server.base)
    for ran in rest:
        assert ran.code == 0 and ran.out.strip(), ran
    registered, available, decisions, memory, speed, loop, cadence, audit, numeric, watch = rest
    assert [r["agent_id"] for r in registered.json()] == ["demo_momentum"]
    assert "demo_momentum" in available.out and "t_007" in available.out
    assert 1 <= len(decisions.json()) <= 3
    assert "demo_momentum" in memory.out
    assert speed.json()["state"]["speed"] == 0.1 and loop.json()["state"]["loop"] is False
    assert cadence.json()["decision_every_bars"] == 240
    assert any(r["actor"].startswith("onlytrade-ops:") for r in audit.json()["records"])  # the CLI names itself
    assert len(numeric.json()) == 1  # a number alone is the limit
    lines = [orjson.loads(line) for line in watch.out.splitlines()]  # one JSON line per refresh
    assert len(lines) == 2 and all(line["status"]["health"]["ok"] for line in lines)


def _rendered(outcome) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    render(console, outcome.view, outcome.data)
    return console.file.getvalue()


def test_functions_called_directly_and_every_view_renders(server, api):
    step = control.step(api, 1)
    assert step.code == 0 and step.data["cycle"]["ran"] is True
    outcomes = {
        "health": reads.health(api), "status": reads.status(api), "preflight": reads.live_preflight(api),
        "agents": reads.agents_registered(api), "decisions": reads.decisions(api, None, 5), "memory": reads.memory(api),
        "audit": reads.audit(api, 5), "step": step, "replay_control": control.set_speed(api, 0.1),
        "agent_control": control.set_cadence(api, 240), "control": control.pause(api),
        "reset": resets.agent_reset(api, "demo_momentum", "stats", dry_run=True),
        "stream": stream.monitor(api, "demo_momentum", 2, sse_seconds=2.0),
    }
    assert outcomes["preflight"].code == 1 and outcomes["health"].code == 0 and outcomes["status"].code == 0
    assert outcomes["control"].data["status"]["runtime"]["paused_reason"] == "manual"
    assert outcomes["reset"].data["dry_run"] is True and outcomes["reset"].notes == ["dry run: nothing changed"]
    for view, outcome in outcomes.items():
        assert outcome.view == view
        assert _rendered(outcome).strip(), view
    assert "FAIL" in _rendered(outcomes["preflight"]) and "rule.heuristic" in _rendered(outcomes["decisions"])
    assert "DRY RUN" in _rendered(outcomes["reset"])
    assert set(VIEWS) >= set(outcomes)
    assert control.resume(api).code == 0
