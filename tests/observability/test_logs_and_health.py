"""Logs and build info: the Gate line on every gate/kill-switch change, LOG_FORMAT=json with the
request id, /health's version and commit (resolved without a git binary), SSE viewers in /metrics."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest
from e2e.server import TOKEN, RuntimeProcess

from runtime_api.observability import build_info


def _lines(server: RuntimeProcess, needle: str) -> list[str]:
    return [line for line in server.read_log().splitlines() if needle in line]


def test_gate_line_on_every_change_and_json_logs_with_request_id(root):
    env = {"LOG_FORMAT": "json", "REPLAY_SPEED": "0.1", "AGENT_DECISION_EVERY_BARS": "240"}
    with RuntimeProcess(root, env) as server:
        time.sleep(1.2)
        assert server.control("/api/agents/demo_momentum/register").status_code == 200
        assert server.control("/api/agents/demo_momentum/start").status_code == 200
        time.sleep(1.2)
        r = httpx.post(server.base + "/api/agent/runtime/kill-switch", json={"action": "activate", "reason": "drill"},
                       headers={"x-control-token": TOKEN, "x-request-id": "req-from-the-proxy-42"}, timeout=10)
        assert r.headers["x-request-id"] == "req-from-the-proxy-42"
        time.sleep(1.2)
        server.control("/api/agent/runtime/kill-switch", {"action": "deactivate"})
        time.sleep(1.2)
        unnamed = httpx.get(server.base + "/api/competition", timeout=10)
        assert unnamed.headers["x-request-id"].startswith("req_")
        hostile = httpx.post(server.base + "/api/agent/runtime/kill-switch", json={"action": "nothing"},  # audited, no change
                             headers={"x-control-token": TOKEN, "x-request-id": "x" * 5000 + "<script>"}, timeout=10)
        assert hostile.headers["x-request-id"] == "x" * 64
    log = server.read_log().splitlines()
    entries = [json.loads(line) for line in log if line.startswith("{")]
    assert entries and all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    gates = [e["msg"] for e in entries if e["msg"].startswith("Gate ")]
    assert gates[0] == "Gate mode=replay status=held reason=no_running_agents active=0/0"
    assert "Gate mode=replay status=open reason=ok active=1/1" in gates
    assert "Gate mode=replay status=killed reason=api active=1/1" in gates
    assert gates[-1] == "Gate mode=replay status=open reason=ok active=1/1"
    assert len(gates) == 4  # one line per change, not per second
    audit = [e for e in entries if "[control_audit]" in e["msg"] and "kill_switch.activate" in e["msg"]]
    assert audit and audit[0]["request_id"] == "req-from-the-proxy-42"
    assert '"request_id":"req-from-the-proxy-42"' in audit[0]["msg"]  # the audit line carries the same id
    assert TOKEN not in "\n".join(log)
    assert "x" * 65 not in "\n".join(log) and "<script>" not in "\n".join(log)  # the audit got the clean id
    uvicorn_lines = [e for e in entries if e["logger"].startswith("uvicorn")]
    assert uvicorn_lines, "uvicorn's own lines are JSON too"


def test_health_reports_version_and_commit_and_sse_viewers_show_in_metrics(root):
    with RuntimeProcess(root, {"ONLYTRADE_GIT_COMMIT": "abc123deploy", "ONLYTRADE_SEED_AGENTS": "demo_momentum"}) as server:
        health = httpx.get(server.base + "/health", timeout=10).json()
        with httpx.Client(base_url=server.base, timeout=10) as c, c.stream("GET", "/api/rooms/demo_momentum/events") as stream:
            assert stream.status_code == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                metrics = c.get("/metrics").text
                if 'onlytrade_sse_subscribers{room="demo_momentum"} 1.0' in metrics:
                    break
                time.sleep(0.1)
    assert health["version"] and health["commit"] == "abc123deploy"
    assert 'onlytrade_sse_subscribers{room="demo_momentum"} 1.0' in metrics
    assert 'onlytrade_build_info{commit="abc123deploy"' in metrics


def _git(*args: str, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(subprocess.run(["sh", "-c", "command -v git"], capture_output=True).returncode, reason="needs git to build the fixture")
def test_commit_is_read_from_the_git_folder_without_a_git_binary(tmp_path):
    repo = tmp_path / "checkout"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    (repo / "f").write_text("x")
    _git("add", "f", cwd=repo)
    _git("-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", "x", cwd=repo)
    head = _git("rev-parse", "HEAD", cwd=repo)
    (repo / "pkg").mkdir()
    assert build_info.commit_from_git(repo / "pkg") == head  # loose ref
    _git("pack-refs", "--all", cwd=repo)
    assert build_info.commit_from_git(repo / "pkg") == head  # packed-refs
    _git("worktree", "add", "-q", str(tmp_path / "wt"), cwd=repo)
    assert build_info.commit_from_git(tmp_path / "wt") == head  # a worktree's .git file
    assert build_info.commit_from_git(tmp_path / "nowhere") is None


def test_commit_falls_back_to_the_recorded_value_then_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(build_info, "PACKAGE_DIR", tmp_path / "site-packages" / "runtime_api")
    monkeypatch.setattr(build_info, "RECORDED", tmp_path / "BUILD_COMMIT")
    assert build_info.commit({}) == "unknown"
    (tmp_path / "BUILD_COMMIT").write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert build_info.commit({}) == "0123456789abcdef0123456789abcdef01234567"
    assert build_info.commit({"ONLYTRADE_GIT_COMMIT": "deadbeef"}) == "deadbeef"
