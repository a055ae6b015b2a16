"""The simulated clock drives freshness, the session gate, the recorded vendor and every status surface."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from runtime_api import clock
from data_jobs.vendor import RecordedVendor, vendor_from_env

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data_jobs" / "fixtures" / "akshare"
FRI_1000 = "2026-02-13T10:00:00+08:00"
OPS = shutil.which("onlytrade-ops", path=str(Path(sys.executable).parent)) or "onlytrade-ops"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def fresh_clock():
    clock.reset()
    yield
    clock.reset()


def test_recorded_vendor_serves_only_bars_up_to_the_clock_and_grows():
    now = {"ms": clock.parse_instant("2026-02-13T10:00:00+08:00")}
    vendor = RecordedVendor(FIXTURES, until_ms=lambda: now["ms"])
    bars = vendor.minute_bars("600519")
    assert str(bars["时间"].iloc[-1]) == "2026-02-13 10:00:00"
    first = len(bars)
    now["ms"] += 5 * 60_000
    grown = vendor.minute_bars("600519")
    assert len(grown) == first + 5 and str(grown["时间"].iloc[-1]) == "2026-02-13 10:05:00"
    news = vendor.market_news()
    assert all(str(t) <= "2026-02-13 10:05:00" for t in news["发布时间"])
    assert len(RecordedVendor(FIXTURES).market_news()) > len(news)


def test_vendor_from_env_follows_a_simulated_clock(monkeypatch):
    monkeypatch.setenv("ONLYTRADE_CLOCK", FRI_1000)
    clock.reset()
    vendor = vendor_from_env({"ONLYTRADE_DATA_VENDOR": f"recorded:{FIXTURES}"})
    assert vendor.until_ms is not None
    assert str(vendor.minute_bars("600519")["时间"].iloc[-1]).startswith("2026-02-13 10:0")


def job_env(root: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "PYTHONPATH": str(REPO), "PYTHONUTF8": "1",
            "ONLYTRADE_ROOT": str(root), "ONLYTRADE_DATA_VENDOR": f"recorded:{FIXTURES}", **extra}


def test_frames_job_and_freshness_cli_run_on_the_simulated_clock(root):
    (root / "data/agents").mkdir(parents=True, exist_ok=True)
    (root / "data/agents/registry.json").write_bytes(orjson.dumps({"schema_version": "agent.registry.v1", "agents": {"t_001": {"status": "running"}}}))
    env = job_env(root, ONLYTRADE_CLOCK=FRI_1000)
    run = subprocess.run([sys.executable, "-m", "data_jobs.frames_collector", "--if-open"], env=env, cwd=root,
                         capture_output=True, timeout=60, check=False)
    summary = orjson.loads(run.stdout.decode().strip().splitlines()[-1])
    assert run.returncode == 0 and summary["status"] == "ok", summary  # the market is open at 10:00 simulated
    assert summary["trading_day"] == "2026-02-13"
    payload = orjson.loads((root / "data/live/onlytrade/frames.1m.json").read_bytes())
    assert payload["latest_ts_ms"] <= clock.parse_instant(FRI_1000) + 60_000
    fresh = subprocess.run([OPS, "--json", "check-live-freshness"], env=env, cwd=root,
                           capture_output=True, timeout=60, check=False)
    report = orjson.loads(fresh.stdout)
    frames = next(r for r in report["checks"] if r["label"] == "cn_a_frames")
    assert frames["ok"] is True and frames["age_sec"] < 120, frames  # fresh on the simulated clock, years old on the wall


@pytest.mark.anyio
async def test_health_status_preflight_and_packet_show_the_clock(root):
    from api.conftest import make_settings, open_api

    handle, lifespan = await open_api(make_settings(root, ONLYTRADE_CLOCK=FRI_1000, ONLYTRADE_CLOCK_SPEED="1",
                                                    ONLYTRADE_SEED_AGENTS="t_001"))
    try:
        health = (await handle.get("/health")).json()
        assert health["clock"]["simulated"] is True and health["clock"]["now"].startswith("2026-02-13T02:0")
        status = (await handle.get("/api/agent/runtime/status")).json()["data"]
        assert status["clock"]["simulated"] is True
        preflight = (await handle.get("/api/ops/live-preflight")).json()["data"]
        assert preflight["checks"]["clock"]["level"] == "WARN" and "simulated_clock" in preflight["checks"]["clock"]["reason"]
        packet = (await handle.get("/api/rooms/t_001/stream-packet")).json()["data"]
        assert packet["clock"]["simulated"] is True and packet["clock"]["start"].startswith("2026-02-13T02:00")
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)
