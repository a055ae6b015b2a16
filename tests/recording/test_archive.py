"""The Parquet show-day archive: written by the frames and daily jobs, appended safely, closed after the session."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pyarrow.parquet as pq
import pytest

from runtime_api.market.bars import load_frames
from runtime_api.recording import archive
from runtime_api.settings import Settings
from data_jobs import daily_history, frames_collector
from data_jobs.vendor import RecordedVendor

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data_jobs" / "fixtures" / "akshare"
SH = ZoneInfo("Asia/Shanghai")
POOL = ["600519.SH", "601899.SH", "300059.SZ"]


def sh(hh: int, mm: int, day: int = 13) -> int:
    return int(datetime(2026, 2, day, hh, mm, 30, tzinfo=SH).timestamp() * 1000)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path)}, env_files=False)


def collect(settings: Settings, now_ms: int):
    vendor = RecordedVendor(FIXTURES, until_ms=lambda: now_ms)
    return frames_collector.run(settings, symbols=POOL, now_ms=now_ms, vendor=vendor)


def test_frames_job_appends_during_the_session_and_closes_after_it(settings):
    root = settings.resolve(settings.archive_dir)
    sizes = []
    for hh, mm in ((9, 45), (10, 30), (11, 31), (14, 0)):
        result = collect(settings, sh(hh, mm))
        assert result.status == "ok", result.summary()
        sizes.append(result.counts["archive_rows"]["2026-02-13"])
        assert result.counts["archive_closed"]["2026-02-13"] is False
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]  # the day grows as the clock runs
    day = root / "cn-a" / "2026-02-13"
    assert not list((day / "parts").glob("*.parquet")), "every part was compacted into the day file"
    after_close = collect(settings, sh(15, 3))
    assert after_close.counts["archive_closed"]["2026-02-13"] is True
    table = pq.read_table(day / "frames.1m.parquet")
    assert pq.ParquetFile(day / "frames.1m.parquet").metadata.row_group(0).column(0).compression == "ZSTD"
    live = load_frames(settings.resolve(settings.live_frames_path_cn))
    assert table.num_rows == len(live) == 3 * 241  # every bar of the day once (240 minutes + the opening auction)
    keys = {(r["symbol"], r["start_ts_ms"]) for r in table.select(["symbol", "start_ts_ms"]).to_pylist()}
    assert len(keys) == table.num_rows
    manifest = archive.manifest(root, "CN-A", "2026-02-13")
    assert manifest["closed"] is True and manifest["files"]["frames.1m.parquet"]["symbols"] == sorted(POOL)
    # the archive holds the same bars as the live file: same closes, same windows
    by_key = {(f["instrument"]["symbol"], f["window"]["start_ts_ms"]): f for f in live}
    for frame in archive.read_day(root, "CN-A", "2026-02-13"):
        twin = by_key[(frame["instrument"]["symbol"], frame["window"]["start_ts_ms"])]
        assert frame["bar"]["close"] == twin["bar"]["close"] and frame["window"] == twin["window"]
        assert frame["session"]["is_partial"] is False


def test_daily_job_archives_the_history_cut_before_the_day_it_serves(settings):
    now = sh(8, 45)
    result = daily_history.run(settings, symbols=POOL, now_ms=now, vendor=RecordedVendor(FIXTURES, until_ms=lambda: now))
    assert result.status == "ok", result.summary()
    assert result.counts["archive_daily_day"] == "2026-02-13"
    frames = archive.read_day(settings.resolve(settings.archive_dir), "CN-A", "2026-02-13", "1d")
    assert frames and max(f["window"]["trading_day"] for f in frames) < "2026-02-13"
    assert {f["instrument"]["symbol"] for f in frames} == set(POOL)


def test_a_part_left_by_a_crash_is_read_and_merged_once(settings, tmp_path):
    root = settings.resolve(settings.archive_dir)
    collect(settings, sh(10, 0))
    bars = archive.read_day(root, "CN-A", "2026-02-13")
    # a crash between writing a part and compacting: the part stays, the day file is the old one
    later = [dict(f, bar={**f["bar"], "close": f["bar"]["close"] + 1}) for f in bars[-3:]]
    part = root / "cn-a" / "2026-02-13" / "parts" / f"1m.{sh(10, 1):015d}.1.parquet"
    archive._write_atomic(part, archive.table_from_frames(later))
    (part.parent / ".1m.000.tmp").write_bytes(b"half a file")  # a torn temp file is never read
    read = archive.read_day(root, "CN-A", "2026-02-13")
    assert len(read) == len(bars) and [f["bar"]["close"] for f in read[-3:]] == [f["bar"]["close"] for f in later]
    archive.compact(root, "CN-A", "2026-02-13")
    assert not list(part.parent.glob("*.parquet")) and len(archive.read_day(root, "CN-A", "2026-02-13")) == len(bars)


WRITER = """
import sys, time
from runtime_api.recording import archive
from runtime_api.market.bars import load_frames
frames = load_frames(sys.argv[2])
for i in range(10**6):
    chunk = frames[(i * 7) % len(frames):][:50]
    archive.append(sys.argv[1], "CN-A", "2026-02-13", chunk, ingest_ms=1_770_000_000_000 + i)
    print(i, flush=True)
"""


def test_sigkill_during_appends_never_corrupts_the_archive(tmp_path):
    root = tmp_path / "archive"
    source = REPO / "data" / "replay" / "cn-a" / "2026-02-13" / "frames.1m.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(source)], stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert proc.stdout.readline()  # at least one append finished
        time.sleep(0.7)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    frames = archive.read_day(root, "CN-A", "2026-02-13")  # raises on a torn file
    keys = [(f["instrument"]["symbol"], f["window"]["start_ts_ms"]) for f in frames]
    assert frames and len(keys) == len(set(keys))
    archive.compact(root, "CN-A", "2026-02-13")
    assert len(archive.read_day(root, "CN-A", "2026-02-13")) == len(frames)
    assert orjson.loads((root / "cn-a" / "2026-02-13" / "archive.json").read_bytes())["files"]["frames.1m.parquet"]["rows"] == len(frames)
