"""The CN 1m frames collector: the pure transform, the merge, the schema, and run() on real files."""

from __future__ import annotations

import shutil

import orjson
import pandas as pd
import pytest

from data_jobs import frames_collector, jobrun
from data_jobs.frames_collector import MAX_FRAMES, merge_frames, to_frames
from data_jobs.vendor import RecordedVendor
from dj_helpers import FIXTURES, FRI_AFTER_CLOSE, FRI_MORNING, REPO, T001_POOL, sh_ms

COLUMNS = ["时间", "开盘", "收盘", "最高", "最低", "成交量", "成交额", "均价"]


def bars(*rows: tuple) -> pd.DataFrame:
    """Rows of (时间, open, close, high, low, lots, turnover) in AKShare's shape."""
    return pd.DataFrame([(*r, r[2]) for r in rows], columns=COLUMNS)


def frame_for(frames: list[dict], symbol: str, start_ms: int) -> dict:
    found = [f for f in frames if f["instrument"]["symbol"] == symbol and f["window"]["start_ts_ms"] == start_ms]
    assert len(found) == 1, found
    return found[0]


# ---- to_frames ---------------------------------------------------------------------------------


def test_window_ends_at_the_vendor_time_and_volume_is_lots_times_100():
    df = bars(("2026-02-13 10:01:00", 10.0, 10.2, 10.3, 9.9, 12, 12_240.0))
    [frame] = to_frames({"600519.SH": df}, trading_day="2026-02-13", now_ms=FRI_AFTER_CLOSE)
    assert frame["window"] == {
        "start_ts_ms": sh_ms(2026, 2, 13, 10, 0),
        "end_ts_ms": sh_ms(2026, 2, 13, 10, 1),
        "trading_day": "2026-02-13",
    }
    assert frame["event_ts_ms"] == sh_ms(2026, 2, 13, 10, 1)
    assert frame["ingest_ts_ms"] == FRI_AFTER_CLOSE
    assert frame["bar"] == {
        "open": 10.0,
        "high": 10.3,
        "low": 9.9,
        "close": 10.2,
        "volume_shares": 1200,
        "turnover_cny": 12_240.0,
        "vwap": 10.2,
    }
    assert frame["instrument"] == {"symbol": "600519.SH", "exchange": "SSE", "timezone": "Asia/Shanghai", "currency": "CNY"}
    assert (frame["schema_version"], frame["market"], frame["mode"], frame["feed"], frame["interval"]) == (
        "market.bar.v1",
        "CN-A",
        "real",
        "bars",
        "1m",
    )


def test_volume_in_shares_is_not_multiplied_and_units_are_checked():
    df = bars(("2026-02-13 10:01:00", 10.0, 10.0, 10.0, 10.0, 500, 5_000.0))
    [frame] = to_frames({"000001.SZ": df}, trading_day=None, now_ms=FRI_AFTER_CLOSE, volume_unit="shares")
    assert frame["bar"]["volume_shares"] == 500
    assert frame["instrument"]["exchange"] == "SZSE"
    with pytest.raises(ValueError):
        to_frames({"000001.SZ": df}, trading_day=None, now_ms=FRI_AFTER_CLOSE, volume_unit="hands")


def test_no_volume_gives_the_close_as_vwap():
    df = bars(("2026-02-13 14:59:00", 10.0, 10.1, 10.1, 10.0, 0, 0.0))
    [frame] = to_frames({"600519.SH": df}, trading_day=None, now_ms=FRI_AFTER_CLOSE)
    assert frame["bar"]["vwap"] == 10.1 and frame["bar"]["volume_shares"] == 0


@pytest.mark.parametrize(
    ("vendor_time", "phase"),
    [
        ("2026-02-13 09:30:00", "pre_open"),  # the opening-auction row covers 09:29-09:30
        ("2026-02-13 09:31:00", "continuous_am"),
        ("2026-02-13 11:30:00", "continuous_am"),
        ("2026-02-13 13:01:00", "continuous_pm"),
        ("2026-02-13 15:00:00", "continuous_pm"),
    ],
)
def test_phase_comes_from_the_session_windows(vendor_time, phase):
    df = bars((vendor_time, 10.0, 10.0, 10.0, 10.0, 1, 1_000.0))
    [frame] = to_frames({"600519.SH": df}, trading_day=None, now_ms=FRI_AFTER_CLOSE)
    assert frame["session"]["phase"] == phase


def test_real_day_is_not_labelled_continuous_am_throughout(vendor):
    frames = to_frames({"600519.SH": vendor.minute_bars("600519")}, trading_day="2026-02-13", now_ms=FRI_AFTER_CLOSE)
    phases = pd.Series([f["session"]["phase"] for f in frames]).value_counts().to_dict()
    assert phases == {"continuous_am": 120, "continuous_pm": 120, "pre_open": 1}


def test_a_bar_still_forming_is_partial():
    df = bars(("2026-02-13 10:00:00", 10.0, 10.0, 10.0, 10.0, 1, 1_000.0), ("2026-02-13 10:01:00", 10.0, 10.0, 10.0, 10.0, 1, 1_000.0))
    frames = to_frames({"600519.SH": df}, trading_day=None, now_ms=FRI_MORNING)  # 10:00:30
    assert [f["session"]["is_partial"] for f in frames] == [False, True]


def test_duplicates_collapse_to_the_last_row_and_output_is_sorted_by_start_then_symbol():
    a = bars(
        ("2026-02-13 10:02:00", 1.0, 1.0, 1.0, 1.0, 1, 100.0),
        ("2026-02-13 10:01:00", 1.0, 1.0, 1.0, 1.0, 1, 100.0),
        ("2026-02-13 10:01:00", 2.0, 2.0, 2.0, 2.0, 2, 400.0),  # a corrected re-send of 10:01
    )
    b = bars(("2026-02-13 10:01:00", 3.0, 3.0, 3.0, 3.0, 1, 300.0), ("2026-02-13 10:02:00", 3.0, 3.0, 3.0, 3.0, 1, 300.0))
    frames = to_frames({"600519.SH": a, "000001.SZ": b}, trading_day=None, now_ms=FRI_AFTER_CLOSE)
    keys = [(f["window"]["start_ts_ms"], f["instrument"]["symbol"]) for f in frames]
    assert keys == sorted(keys) and len(keys) == len(set(keys)) == 4
    assert frame_for(frames, "600519.SH", sh_ms(2026, 2, 13, 10, 0))["bar"]["close"] == 2.0
    assert [f["seq"] for f in frames] == [1, 2, 3, 4]


def test_output_is_bounded_to_the_newest_frames(vendor):
    df_by_symbol = {s: vendor.minute_bars(s[:6]) for s in T001_POOL[:3]}
    frames = to_frames(df_by_symbol, trading_day=None, now_ms=FRI_AFTER_CLOSE, max_frames=50)
    everything = to_frames(df_by_symbol, trading_day=None, now_ms=FRI_AFTER_CLOSE, max_frames=MAX_FRAMES)
    assert len(frames) == 50
    assert [f["window"]["start_ts_ms"] for f in frames] == [f["window"]["start_ts_ms"] for f in everything[-50:]]


def test_trading_day_keeps_only_that_day(vendor):
    df = vendor.minute_bars("600519")  # the vendor returns several days (here 2026-02-10 and 2026-02-13)
    only_friday = to_frames({"600519.SH": df}, trading_day="2026-02-13", now_ms=FRI_AFTER_CLOSE)
    every_day = to_frames({"600519.SH": df}, trading_day=None, now_ms=FRI_AFTER_CLOSE)
    assert {f["window"]["trading_day"] for f in only_friday} == {"2026-02-13"}
    assert {f["window"]["trading_day"] for f in every_day} == {"2026-02-10", "2026-02-13"}


def test_rows_without_prices_are_dropped_and_missing_columns_fail_loudly():
    df = bars(("2026-02-13 10:01:00", None, 1.0, 1.0, 1.0, 1, 100.0), ("bad time", 1.0, 1.0, 1.0, 1.0, 1, 100.0))
    assert to_frames({"600519.SH": df}, trading_day=None, now_ms=FRI_AFTER_CLOSE) == []
    with pytest.raises(ValueError, match="lack columns"):
        to_frames({"600519.SH": df.drop(columns=["成交额"])}, trading_day=None, now_ms=FRI_AFTER_CLOSE)


def test_last_trading_day_steps_back_over_weekends_and_holidays():
    assert frames_collector.last_trading_day(FRI_MORNING) == "2026-02-13"
    assert frames_collector.last_trading_day(sh_ms(2026, 2, 15, 12)) == "2026-02-13"  # Sunday
    assert frames_collector.last_trading_day(sh_ms(2026, 2, 18, 12)) == "2026-02-13"  # Spring Festival


# ---- merge ---------------------------------------------------------------------------------------


def test_merge_new_wins_drops_malformed_bounds_and_renumbers():
    old = to_frames({"600519.SH": bars(("2026-02-13 10:01:00", 1.0, 1.0, 1.0, 1.0, 1, 100.0), ("2026-02-13 10:02:00", 1.0, 1.0, 1.0, 1.0, 1, 100.0))}, trading_day=None, now_ms=FRI_AFTER_CLOSE)
    new = to_frames({"600519.SH": bars(("2026-02-13 10:02:00", 2.0, 2.0, 2.0, 2.0, 1, 200.0), ("2026-02-13 10:03:00", 2.0, 2.0, 2.0, 2.0, 1, 200.0))}, trading_day=None, now_ms=FRI_AFTER_CLOSE)
    merged = merge_frames([*old, {"junk": True}, "not a frame"], new)
    assert [f["window"]["end_ts_ms"] for f in merged] == [sh_ms(2026, 2, 13, 10, m) for m in (1, 2, 3)]
    assert [f["bar"]["close"] for f in merged] == [1.0, 2.0, 2.0]
    assert [f["seq"] for f in merged] == [1, 2, 3]
    assert [f["window"]["end_ts_ms"] for f in merge_frames(old, new, max_frames=2)] == [sh_ms(2026, 2, 13, 10, m) for m in (2, 3)]


# ---- schema ------------------------------------------------------------------------------------


def _validators():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is needed to validate against data/contracts")
    referencing = pytest.importorskip("referencing")
    contracts = REPO / "data" / "contracts"
    bar_schema = orjson.loads((contracts / "market.bar.v1.schema.json").read_bytes())
    frames_schema = orjson.loads((contracts / "market.frames.v1.schema.json").read_bytes())
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in (bar_schema, frames_schema)
    )
    return (
        jsonschema.Draft202012Validator(frames_schema, registry=registry),
        jsonschema.Draft202012Validator(bar_schema, registry=registry),
    )


def test_written_file_is_market_frames_v1(settings, vendor):
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    assert result.status == "ok", result.summary()
    payload = orjson.loads(settings.resolve(settings.live_frames_path_cn).read_bytes())
    frames_validator, bar_validator = _validators()
    for frame in payload["frames"][:50] + payload["frames"][-50:]:
        bar_validator.validate(frame)
    # generated_at and latest_ts_ms are optional keys of the contract we ship (older files stay valid).
    frames_validator.validate({**payload, "frames": payload["frames"][:3]})
    assert isinstance(payload["generated_at"], str) and payload["latest_ts_ms"] == max(
        f["window"]["end_ts_ms"] for f in payload["frames"])
    bogus = list(frames_validator.iter_errors({**payload, "frames": [], "extra": 1}))
    assert len(bogus) == 1 and bogus[0].validator == "additionalProperties"


# ---- run() -------------------------------------------------------------------------------------


def test_run_collects_the_registered_pool_and_writes_freshness_fields(settings, vendor):
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    assert result.exit_code == jobrun.EXIT_OK and result.wrote
    payload = orjson.loads(settings.resolve(settings.live_frames_path_cn).read_bytes())
    assert {f["instrument"]["symbol"] for f in payload["frames"]} == set(T001_POOL)
    assert len(payload["frames"]) == 10 * 241
    assert payload["latest_ts_ms"] == sh_ms(2026, 2, 13, 15, 0) == result.latest_ts_ms
    assert payload["generated_at"] == "2026-02-13T07:03:00.000Z"
    assert (payload["schema_version"], payload["market"], payload["mode"], payload["provider"]) == (
        "market.frames.v1",
        "CN-A",
        "real",
        "akshare-recorded",
    )
    assert result.summary()["frames"] == 2410 and result.summary()["file"] == "data/live/onlytrade/frames.1m.json"


def test_run_merges_with_the_existing_file(settings, vendor):
    path = settings.resolve(settings.live_frames_path_cn)
    older = to_frames({"600519.SH": vendor.minute_bars("600519")}, trading_day="2026-02-10", now_ms=FRI_AFTER_CLOSE)
    path.parent.mkdir(parents=True)
    path.write_bytes(orjson.dumps(frames_collector.frames_payload(older, provider="akshare", now_ms=FRI_AFTER_CLOSE)))
    frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor, max_frames=2500)
    payload = orjson.loads(path.read_bytes())
    days = pd.Series([f["window"]["trading_day"] for f in payload["frames"]]).value_counts().to_dict()
    assert len(payload["frames"]) == 2500  # bounded: 238 old + 2410 new, the oldest 148 dropped
    assert days == {"2026-02-13": 2410, "2026-02-10": 90}


def test_a_corrupt_existing_file_is_replaced_and_reported(settings, vendor):
    path = settings.resolve(settings.live_frames_path_cn)
    path.parent.mkdir(parents=True)
    path.write_text("{ torn")
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    assert result.status == "ok" and result.summary()["replaced_corrupt_file"] is True
    assert len(orjson.loads(path.read_bytes())["frames"]) == 2410


def test_vendor_failure_mid_run_leaves_the_old_file_byte_for_byte(settings):
    path = settings.resolve(settings.live_frames_path_cn)
    frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=RecordedVendor(FIXTURES))
    before = path.read_bytes()
    failing = RecordedVendor(FIXTURES, fail_after=4)
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE + 60_000, vendor=failing)
    assert (result.status, result.exit_code, result.wrote, result.error) == ("error", jobrun.EXIT_ERROR, False, "vendor_error")
    assert len(failing.calls) == 5
    assert path.read_bytes() == before
    assert not list(path.parent.glob("*.tmp"))


def test_tolerated_symbol_failures_update_the_others(settings, tmp_path):
    fixtures = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, fixtures)
    (fixtures / "minute_bars" / "600519.csv").unlink()
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=RecordedVendor(fixtures), max_failed_symbols=1)
    assert result.status == "ok" and result.summary()["failed_symbols"] == ["600519.SH"]
    assert result.summary()["frames"] == 9 * 241
    strict = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=RecordedVendor(fixtures))
    assert strict.status == "error"


def test_empty_registry_collects_every_manifest_pool(settings, vendor):
    # A fresh host: nobody registered yet, but the runtime needs frames to boot in strict mode.
    settings.resolve(settings.agent_registry_path).unlink()
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    assert result.status == "ok", result.summary()
    assert result.summary()["symbols"] == 14  # t_001's pool plus the demo agents' pool
    assert len(vendor.calls) == 14


def test_no_manifest_with_a_pool_means_nothing_to_collect(settings, vendor):
    settings.resolve(settings.agent_registry_path).unlink()
    shutil.rmtree(settings.resolve(settings.agents_dir))
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    assert (result.status, result.reason, result.exit_code) == ("skipped", "no_symbols", 0)
    assert vendor.calls == [] and not settings.resolve(settings.live_frames_path_cn).exists()


def test_explicit_symbols_override_the_pools(settings, vendor):
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor, symbols=["600519.SH"], all_days=True)
    payload = orjson.loads(settings.resolve(settings.live_frames_path_cn).read_bytes())
    assert result.summary()["symbols"] == 1 and len(payload["frames"]) == 479
    assert vendor.calls == ["minute_bars:minute_bars/600519.csv"]


def test_large_file_round_trip_stays_bounded(settings, vendor):
    # 10 symbols x 241 bars x 9 shifted copies ~ 21.7k frames in: the file keeps exactly MAX_FRAMES.
    base = {s: vendor.minute_bars(s[:6]) for s in T001_POOL}
    path = settings.resolve(settings.live_frames_path_cn)
    for days_back in range(9):
        shifted = {}
        for symbol, df in base.items():
            df = df[df["时间"].str.startswith("2026-02-13")].copy()
            df["时间"] = (pd.to_datetime(df["时间"]) - pd.Timedelta(days=days_back)).dt.strftime("%Y-%m-%d %H:%M:%S")
            shifted[symbol] = df
        existing, _ = frames_collector.read_existing_frames(path)
        merged = merge_frames(existing, to_frames(shifted, trading_day=None, now_ms=FRI_AFTER_CLOSE))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(frames_collector.frames_payload(merged, provider="akshare", now_ms=FRI_AFTER_CLOSE)))
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    payload = orjson.loads(path.read_bytes())
    assert result.summary()["frames"] == len(payload["frames"]) == MAX_FRAMES
    assert payload["frames"][-1]["window"]["end_ts_ms"] == sh_ms(2026, 2, 13, 15, 0)
    starts = [(f["window"]["start_ts_ms"], f["instrument"]["symbol"]) for f in payload["frames"]]
    assert starts == sorted(starts)


def test_fixture_layout_matches_the_vendor_contract():
    df = RecordedVendor(FIXTURES).minute_bars("600519")
    assert list(df.columns) == COLUMNS
    assert (FIXTURES.parent / "README.md").exists()


def test_status_reports_the_canonical_file(settings, vendor):
    assert frames_collector.status(settings)["error"] == "file_not_found"
    frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    info = frames_collector.status(settings)
    assert {k: info[k] for k in ("file", "exists", "provider", "mode", "frame_count", "symbol_count", "latest_ts_ms", "error")} == {
        "file": "data/live/onlytrade/frames.1m.json",
        "exists": True,
        "provider": "akshare-recorded",
        "mode": "real",
        "frame_count": 2410,
        "symbol_count": 10,
        "latest_ts_ms": sh_ms(2026, 2, 13, 15, 0),
        "error": None,
    }
    settings.resolve(settings.live_frames_path_cn).write_text("{ torn")
    assert frames_collector.status(settings)["error"] == "invalid_json"
