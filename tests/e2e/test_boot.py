"""Boot fails fast with one line and a distinct exit code; a second instance refuses to start."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

from .server import RuntimeProcess


def boot(root, **env) -> subprocess.CompletedProcess:
    proc = RuntimeProcess(root, env)
    return subprocess.run([sys.executable, "-m", "runtime_api"], cwd=root, env=proc.env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    "env, code, needle",
    [
        ({"PORT": "abc"}, 2, "PORT: expected a number"),
        ({"RUNTIME_DATA_MODE": "bogus"}, 2, "RUNTIME_DATA_MODE"),
        ({"STRICT_LIVE_MODE": "true"}, 2, "strict_live_mode_requires_runtime_data_mode_live_file"),
        ({"RUNTIME_DATA_MODE": "live_file"}, 3, "live_frames_path_cn_unreadable"),
    ],
)
def test_bad_configuration_exits_with_one_line(root, env, code, needle):
    result = boot(root, **env)
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert str(root) not in lines[0] or "registry" in lines[0]


def test_corrupt_registry_stops_boot_and_is_never_overwritten(root):
    registry = root / "data" / "agents" / "registry.json"
    registry.parent.mkdir(parents=True)
    registry.write_bytes(b'{"schema_version": "agent.registry.v1", "agents": {')
    result = boot(root, ONLYTRADE_SEED_AGENTS="all")
    assert result.returncode == 3
    assert "corrupt registry data/agents/registry.json" in result.stderr
    assert registry.read_bytes() == b'{"schema_version": "agent.registry.v1", "agents": {'


def test_second_instance_refuses_to_start(root):
    with RuntimeProcess(root) as first:
        result = boot(root, PORT=str(first.port + 1 if first.port < 65535 else 1024))
        assert result.returncode == 4
        assert "another runtime already holds" in result.stderr


def test_node_data_directory_loads_unchanged(root):
    """The Node registry fixture (with agents that have no manifest here) boots and is not rewritten."""
    src = REPO / "tests" / "stores" / "fixtures" / "node-registry.json"  # the Node runtime's own file
    registry = root / "data" / "agents" / "registry.json"
    registry.parent.mkdir(parents=True)
    registry.write_bytes(src.read_bytes())
    with RuntimeProcess(root) as server, server.client() as c:
        registered = c.get("/api/agents/registered").json()["data"]
        assert [r["agent_id"] for r in registered] == ["t_001", "t_003"]
        assert registered[0]["registered_at"] == "2026-02-13T01:50:18.407Z"
    assert registry.read_bytes() == src.read_bytes()



def test_the_server_freezes_its_boot_heap_and_reports_the_collector(root):
    """runtime_api/observability/heap.py is installed by the server process: status and /metrics show it."""
    with RuntimeProcess(root, env={"ONLYTRADE_SEED_AGENTS": "all"}) as server, server.client() as c:
        deadline = time.monotonic() + 10  # installed a second after ready
        while not (status := c.get("/api/agent/runtime/status").json()["data"]["gc"])["installed"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert status["frozen_objects"] > 10_000
        assert status["thaw_every_s"] == 24 * 3600
        metrics = c.get("/metrics").text
        assert "onlytrade_gc_frozen_objects " in metrics and "onlytrade_gc_pauses_over_20ms_total " in metrics


def test_a_server_that_never_got_ready_is_not_left_running(root):
    server = RuntimeProcess(root)
    with pytest.raises(RuntimeError, match="not ready"):
        server.start(timeout=0.01)  # no boot is that fast: the start fails as a hung boot would
    assert server.proc.poll() is not None  # stopped, though no caller holds it to stop it
