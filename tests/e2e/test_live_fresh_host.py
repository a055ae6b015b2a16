"""A fresh host goes live: the data jobs (real subprocesses, recorded vendor) write the files, the
runtime (a real process, live_file + strict) boots with an empty registry, preflight passes and a
t_001 cycle decides with readiness OK on the daily history the job wrote.

The runtime process runs on the clock of a trading session (2026-02-13 10:30:20 Shanghai, still
ticking): `time.time` is shifted by a tiny launcher before the runtime is imported. The jobs get
the same moment with their own `--now`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pandas as pd

from .server import RuntimeProcess

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data_jobs" / "fixtures" / "akshare"
SESSION_NOW = "2026-02-13T10:30:20+08:00"
SESSION_NOW_MS = 1_770_949_820_000
PRE_OPEN = "2026-02-13T08:50:00+08:00"
T001_POOL = {"002050.SZ", "002131.SZ", "002195.SZ", "002342.SZ", "300058.SZ", "300059.SZ", "600089.SH", "600519.SH", "600986.SH", "601899.SH"}

# Runs the runtime exactly as `python -m runtime_api`, on a clock moved to E2E_CLOCK_START_MS.
LAUNCHER = (
    "import os, runpy, time\n"
    "_real = time.time\n"
    "_offset = int(os.environ['E2E_CLOCK_START_MS']) / 1000 - _real()\n"
    "time.time = lambda: _real() + _offset\n"
    "runpy.run_module('runtime_api', run_name='__main__', alter_sys=True)\n"
)


def data(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def fresh_host(tmp_path: Path) -> Path:
    """What a new host has: the code's agents and replay pack, no registry, no live files."""
    root = tmp_path / "host"
    shutil.copytree(REPO / "agents", root / "agents")
    shutil.copytree(REPO / "data" / "replay", root / "data" / "replay")
    return root


def vendor_at_session(tmp_path: Path) -> Path:
    """The recorded vendor as it answers at 10:30: 1m bars up to 10:30."""
    fx = tmp_path / "vendor"
    shutil.copytree(FIXTURES, fx)
    for csv in (fx / "minute_bars").glob("*.csv"):
        df = pd.read_csv(csv, dtype=str)
        df[df["时间"] <= "2026-02-13 10:30:00"].to_csv(csv, index=False)
    return fx


def run_job(module: str, *args: str, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", f"data_jobs.{module}", *args], env=env, cwd=env["ONLYTRADE_ROOT"],
                          capture_output=True, timeout=90, check=False)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    [line] = [line for line in proc.stdout.decode().splitlines() if line.strip()]
    return orjson.loads(line)


def test_fresh_host_goes_live_on_the_files_the_jobs_wrote(tmp_path):
    root = fresh_host(tmp_path)
    fx = vendor_at_session(tmp_path)
    job_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "PYTHONPATH": str(REPO), "PYTHONUTF8": "1",
        "ONLYTRADE_ROOT": str(root), "ONLYTRADE_DATA_VENDOR": f"recorded:{fx}",
    }
    daily = run_job("daily_history", "--now", PRE_OPEN, env=job_env)
    assert daily["status"] == "ok" and daily["symbols"] == 14 and daily["latest_trading_day"] == "2026-02-12"
    frames = run_job("frames_collector", "--now", SESSION_NOW, env=job_env)
    assert frames["status"] == "ok" and frames["symbols"] == 14  # empty registry: every manifest's pool
    for job in ("market_overview", "breadth", "news_digest"):
        assert run_job(job, "--now", SESSION_NOW, env=job_env)["status"] == "ok"
    assert not (root / "data" / "agents" / "registry.json").exists()

    env = {
        "RUNTIME_DATA_MODE": "live_file", "STRICT_LIVE_MODE": "true", "AGENT_RUNTIME_CYCLE_MS": "120000",
        "E2E_CLOCK_START_MS": str(SESSION_NOW_MS + int((time.time() * 1000) % 1000)),
    }
    server = RuntimeProcess(root, env=env, command=[sys.executable, "-c", LAUNCHER]).start(timeout=40)
    try:
        with server.client() as c:
            before = data(c.get("/api/ops/live-preflight"))
            assert before["checks"]["registry_count"]["level"] == "FAIL"  # nobody registered yet: not ready
            data(server.control("/api/agents/t_001/register"))
            data(server.control("/api/agents/t_001/start"))

            report = data(c.get("/api/ops/live-preflight"))
            levels = {name: check["level"] for name, check in report["checks"].items()}
            assert report["ok"] is True, report
            assert report["phase"] == "open"
            for name in ("data_mode", "strict_live_mode", "freshness", "daily_history", "pool_symbols", "market_gate", "registry_count"):
                assert levels[name] == "PASS", (name, report["checks"][name])
            assert report["checks"]["pool_symbols"]["agents"]["t_001"]["daily_usable_count"] == 10

            step = data(server.control("/api/agent/runtime/control", {"action": "step"}))
            assert step["cycle"]["ran"] is True and step["cycle"]["trader_ids"] == ["t_001"], step
            status = data(c.get("/api/agent/runtime/status"))
            [trader] = [t for t in status["traders"] if t["trader_id"] == "t_001"]
            assert trader["excluded_symbols"] == {} and trader["last_error"] is None
    finally:
        server.stop()

    [audit_file] = list((root / "data" / "audit").rglob("*.jsonl"))
    [audit] = [orjson.loads(line) for line in audit_file.read_bytes().splitlines() if line.strip()]
    ready = audit["data_readiness"]
    assert ready["level"] == "OK", ready
    assert ready["metrics"]["daily_frames"] >= 61 and ready["metrics"]["intraday_frames"] >= 21
    assert audit["symbol"] in T001_POOL and audit["forced_hold"] is False
    # The daily bars came from the job's file, not the replay pack (which has 1 of t_001's symbols).
    written = orjson.loads((root / "data" / "live" / "onlytrade" / "frames.1d.json").read_bytes())
    assert {f["instrument"]["symbol"] for f in written["frames"]} >= T001_POOL
