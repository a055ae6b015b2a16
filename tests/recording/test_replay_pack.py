"""Archive -> replay pack -> replay, on the recorded vendor: the pack replays what the jobs collected."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from runtime_api.market.bars import load_frames
from runtime_api.settings import Settings
from data_jobs import breadth, daily_history, frames_collector
from data_jobs.vendor import RecordedVendor

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data_jobs" / "fixtures" / "akshare"
SH = ZoneInfo("Asia/Shanghai")
OPS = shutil.which("onlytrade-ops", path=str(Path(sys.executable).parent)) or "onlytrade-ops"
T001_POOL = ["002050.SZ", "002131.SZ", "002195.SZ", "002342.SZ", "300058.SZ", "300059.SZ", "600089.SH", "600519.SH", "600986.SH", "601899.SH"]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def sh(day: int, hh: int, mm: int) -> int:
    return int(datetime(2026, 2, day, hh, mm, 30, tzinfo=SH).timestamp() * 1000)


def vendor_at(now: int) -> RecordedVendor:
    return RecordedVendor(FIXTURES, until_ms=lambda: now)


def record_show_days(settings: Settings) -> None:
    """Two show days as the timers would run them: daily before the open, frames and breadth during, frames after the close."""
    for day, pool in ((10, ["600519.SH"]), (13, T001_POOL)):
        for job, when in ((daily_history, sh(day, 8, 45)),):
            assert job.run(settings, symbols=pool, now_ms=when, vendor=vendor_at(when)).status == "ok"
        for hh, mm in ((9, 40), (11, 0), (14, 30), (15, 3)):
            now = sh(day, hh, mm)
            assert frames_collector.run(settings, symbols=pool, now_ms=now, vendor=vendor_at(now)).status == "ok"
            if day == 13:
                assert breadth.run(settings, now_ms=now, vendor=vendor_at(now)).status == "ok"


def build(root: Path, out: Path, *extra: str) -> dict:
    proc = subprocess.run([OPS, "--json", "replay-pack", "build", "--from-archive", "all", "--out", str(out), *extra],
                          env={"PATH": "/usr/bin:/bin", "HOME": str(root), "ONLYTRADE_ROOT": str(root)}, cwd=root,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)


@pytest.mark.anyio
async def test_archive_to_pack_to_replay_round_trip(root):
    settings = Settings.from_env({"ONLYTRADE_ROOT": str(root)}, env_files=False)
    record_show_days(settings)
    pack = build(root, root / "packs" / "show-jsonl")
    assert [d["day"] for d in pack["days"]] == ["2026-02-10", "2026-02-13"]
    assert all(d["closed"] for d in pack["days"]) and pack["days"][1]["frames"] == 10 * 241
    parquet = build(root, root / "packs" / "show-parquet", "--format", "parquet")
    assert parquet["days"] == pack["days"]

    jsonl_frames = load_frames(root / "packs" / "show-jsonl")
    parquet_frames = load_frames(root / "packs" / "show-parquet")
    live = load_frames(root / "data/live/onlytrade/frames.1m.json")
    key = lambda f: (f["instrument"]["symbol"], f["window"]["start_ts_ms"], f["bar"]["close"], f["bar"]["volume_shares"])
    assert sorted(map(key, jsonl_frames)) == sorted(map(key, parquet_frames))
    assert {key(f) for f in live} <= {key(f) for f in jsonl_frames}  # the live file keeps one day; the archive every day

    day13 = root / "packs" / "show-jsonl" / "2026-02-13"
    meta = orjson.loads((day13 / "meta.json").read_bytes())
    assert meta["provenance"]["archive_closed"] is True and len(meta["provenance"]["archive_sha256"]) == 64
    assert meta["daily_history"]["last_trading_day"] == "2026-02-12" and meta["breadth"]["source"] == "breadth_job"
    names = orjson.loads((root / "packs" / "show-jsonl" / "symbol_names.json").read_bytes())["names"]
    assert names.get("600519.SH") == "贵州茅台"
    again = subprocess.run([OPS, "replay-pack", "build", "--from-archive", "all", "--out", str(root / "packs" / "show-jsonl")],
                           env={"PATH": "/usr/bin:/bin", "ONLYTRADE_ROOT": str(root)}, cwd=root, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr

    # the runtime replays the Parquet pack: both days, and t_001 decides on the daily history the pack carries
    from api.conftest import data_of, make_settings, open_api

    handle, lifespan = await open_api(make_settings(
        root, REPLAY_FRAMES_PATH="packs/show-parquet", MARKET_DAILY_HISTORY_PATH=f"packs/show-parquet/{pack['daily_history_file']}",
        ONLYTRADE_SEED_AGENTS="t_001", REPLAY_WARMUP_BARS="300", REPLAY_SYMBOL_NAMES_PATH="packs/show-parquet/symbol_names.json"))
    try:
        status = data_of(await handle.get("/api/replay/runtime/status"))
        assert status["day_count"] == 2 and status["trading_day"] == "2026-02-13"
        symbols = (await handle.get("/api/symbols")).json()
        assert "贵州茅台" in str(symbols)  # the pack's names are the names viewers see
        step = data_of(await handle.control("/api/replay/runtime/control", {"action": "step", "bars": 1}))
        assert [d["trader_id"] for d in step["cycle"]["decisions"]] == ["t_001"]
        audit = data_of(await handle.get("/api/agents/t_001/decision-audit/latest?limit=1"))["records"][0]
        assert audit["data_readiness"]["level"] != "ERROR", audit["data_readiness"]
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)
