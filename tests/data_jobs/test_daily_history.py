"""The CN daily-history job: vendor rows -> complete-day 1d bars, every manifest's pool, real files and the CLI."""

from __future__ import annotations

import shutil

import orjson
import pandas as pd

from data_jobs import daily_history, jobrun
from data_jobs.vendor import RecordedVendor
from dj_helpers import FIXTURES, FRI_AFTER_CLOSE, FRI_MORNING, T001_POOL, run_job_cli, sh_ms

PRE_OPEN = sh_ms(2026, 2, 13, 8, 50)
ALL_POOLS = sorted({*T001_POOL, "601318.SH", "600036.SH", "000858.SZ", "300750.SZ"})


def load(settings) -> dict:
    return orjson.loads(settings.resolve(settings.live_daily_path_cn).read_bytes())


def test_before_the_open_the_file_ends_on_the_previous_trading_day(settings, vendor):
    result = daily_history.run(settings, now_ms=PRE_OPEN, vendor=vendor)
    assert result.status == "ok", result.summary()
    payload = load(settings)
    assert (payload["schema_version"], payload["mode"], payload["provider"]) == ("market.frames.v1", "real", "akshare-recorded")
    symbols = {f["instrument"]["symbol"] for f in payload["frames"]}
    assert symbols == set(ALL_POOLS)  # every manifest's pool, not only the registered t_001
    assert {f["interval"] for f in payload["frames"]} == {"1d"}
    assert result.summary()["latest_trading_day"] == "2026-02-12"
    per_symbol = pd.Series([f["instrument"]["symbol"] for f in payload["frames"]]).value_counts()
    assert per_symbol.min() >= settings.data_readiness_min_daily_frames and per_symbol.max() == 111
    assert "short_symbols" not in result.summary()


def test_bars_are_unadjusted_lots_times_100_and_close_at_15(settings, vendor):
    daily_history.run(settings, now_ms=PRE_OPEN, vendor=vendor)
    bar = next(f for f in load(settings)["frames"] if f["instrument"]["symbol"] == "600519.SH" and f["window"]["trading_day"] == "2026-02-12")
    assert bar["window"] == {"start_ts_ms": sh_ms(2026, 2, 12), "end_ts_ms": sh_ms(2026, 2, 12, 15), "trading_day": "2026-02-12"}
    assert bar["bar"]["close"] == 1486.6 and bar["bar"]["volume_shares"] == 46245 * 100
    assert bar["instrument"]["exchange"] == "SSE" and bar["session"]["is_partial"] is False


def test_today_is_kept_only_after_the_close(settings, vendor):
    assert daily_history.run(settings, now_ms=FRI_MORNING, vendor=vendor).summary()["latest_trading_day"] == "2026-02-12"
    after = daily_history.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=RecordedVendor(FIXTURES))
    assert after.summary()["latest_trading_day"] == "2026-02-13"
    assert after.latest_ts_ms == sh_ms(2026, 2, 13, 15)


def test_bad_vendor_rows_are_dropped_and_the_count_is_bounded(settings, tmp_path):
    fixtures = tmp_path / "fx"
    shutil.copytree(FIXTURES, fixtures)
    csv = fixtures / "daily_bars" / "600519.csv"
    df = pd.read_csv(csv, dtype={"股票代码": str})
    df.loc[5, "收盘"] = None
    df.loc[6, "开盘"] = -1
    df.to_csv(csv, index=False)
    daily_history.run(settings, now_ms=PRE_OPEN, vendor=RecordedVendor(fixtures), bars=80)
    frames = [f for f in load(settings)["frames"] if f["instrument"]["symbol"] == "600519.SH"]
    assert len(frames) == 80 and all(f["bar"]["close"] > 0 and f["bar"]["open"] > 0 for f in frames)
    days = [f["window"]["trading_day"] for f in frames]
    assert days == sorted(days) and days[-1] == "2026-02-12"


def test_a_short_history_is_reported(settings, tmp_path):
    fixtures = tmp_path / "fx"
    shutil.copytree(FIXTURES, fixtures)
    csv = fixtures / "daily_bars" / "002050.csv"
    pd.read_csv(csv, dtype={"股票代码": str}).tail(30).to_csv(csv, index=False)
    result = daily_history.run(settings, now_ms=PRE_OPEN, vendor=RecordedVendor(fixtures))
    assert result.status == "ok" and result.summary()["short_symbols"] == ["002050.SZ"]


def test_vendor_failure_keeps_the_old_file_and_tolerated_failures_keep_old_bars(settings, tmp_path):
    daily_history.run(settings, now_ms=PRE_OPEN, vendor=RecordedVendor(FIXTURES))
    path = settings.resolve(settings.live_daily_path_cn)
    before = path.read_bytes()
    failing = daily_history.run(settings, now_ms=PRE_OPEN + 60_000, vendor=RecordedVendor(FIXTURES, fail_after=3))
    assert (failing.status, failing.error, failing.wrote) == ("error", "vendor_error", False)
    assert path.read_bytes() == before
    fixtures = tmp_path / "fx"
    shutil.copytree(FIXTURES, fixtures)
    (fixtures / "daily_bars" / "600519.csv").unlink()
    tolerated = daily_history.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=RecordedVendor(fixtures), max_failed_symbols=1)
    assert tolerated.summary()["failed_symbols"] == ["600519.SH"]
    kept = [f for f in load(settings)["frames"] if f["instrument"]["symbol"] == "600519.SH"]
    assert len(kept) == 111 and kept[-1]["window"]["trading_day"] == "2026-02-12"  # the old bars stay


def test_cli_writes_the_file_as_a_subprocess_on_a_fresh_host(live_root, job_env):
    (live_root / "data" / "agents" / "registry.json").unlink()  # empty registry: a fresh host
    code, summary, _ = run_job_cli("daily_history", "--now", "2026-02-13T08:50:00", env=job_env)
    assert code == jobrun.EXIT_OK and summary["status"] == "ok" and summary["symbols"] == 14
    assert summary["file"] == "data/live/onlytrade/frames.1d.json" and summary["latest_trading_day"] == "2026-02-12"
    code, summary, _ = run_job_cli("daily_history", "--now", "2026-02-13T08:50:00", "--symbols", "600519", env=job_env)
    assert code == 0 and summary["symbols"] == 1
