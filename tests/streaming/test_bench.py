"""bench/sse_viewers.py, run as a subprocess against a real uvicorn serving a minimal room app."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.streaming.bench_app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--timeout-graceful-shutdown", "3"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.post(f"{base}/api/agent/runtime/control", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()


def test_bench_reports_delivery_to_every_viewer(server):
    base, pid = server
    run = subprocess.run(
        [sys.executable, "bench/sse_viewers.py", "--base", base, "--room", "t_001", "--viewers", "5",
         "--viewers", "40", "--token", "bench-secret", "--timeout", "20", "--settle", "0.2"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"server pid: {pid}", "the pid is found from the listening port"
    rows = [line.split() for line in lines[3:5]]
    assert [row[:3] for row in rows] == [["5", "5", "5"], ["40", "40", "40"]]
    assert all(row[-2:] == ["200", "ok"] for row in rows)


def test_bench_refuses_a_non_loopback_base():
    run = subprocess.run([sys.executable, "bench/sse_viewers.py", "--base", "http://example.com:80"],
                         cwd=REPO, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "loopback" in run.stderr


def test_bench_spawns_the_real_runtime_and_reports_delivery():
    run = subprocess.run(
        [sys.executable, "bench/sse_viewers.py", "--spawn", "--room", "demo_momentum", "--viewers", "5",
         "--timeout", "20", "--settle", "0.2"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    row = run.stdout.splitlines()[3].split()
    assert row[:3] == ["5", "5", "5"] and row[-2:] == ["200", "ok"]


def test_bench_wants_a_base_or_spawn():
    run = subprocess.run([sys.executable, "bench/sse_viewers.py"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "--base or --spawn" in run.stderr
