"""Freshness is judged on the newest data inside each live file; the mtime only when a payload has none."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from runtime_api.market import freshness
from runtime_api.market.freshness import DEFAULT_CHECKS, check_file, run_checks
from runtime_api.settings import Settings

NOW = 1_770_966_180_000  # 2026-02-13 15:03 Shanghai; every test injects it, none sleeps
MIN = 60_000


def frame(symbol: str, end_ms: int) -> dict:
    return {
        "schema_version": "market.bar.v1",
        "instrument": {"symbol": symbol},
        "interval": "1m",
        "event_ts_ms": end_ms,
        "window": {"start_ts_ms": end_ms - MIN, "end_ts_ms": end_ms, "trading_day": "2026-02-13"},
    }


def frames_file(path: Path, ends: list[int], **top) -> Path:
    payload = {"schema_version": "market.frames.v1", "market": "CN-A", "mode": "real", "provider": "t", **top}
    payload["frames"] = [frame(f"60000{i % 9}.SH", end) for i, end in enumerate(ends)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(payload))
    return path


def json_file(path: Path, payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(payload))
    return path


def set_mtime(path: Path, epoch_ms: int) -> None:
    os.utime(path, (epoch_ms / 1000, epoch_ms / 1000))


def check(path: Path, max_age_ms: int = 180_000, now_ms: int = NOW) -> dict:
    return check_file(path, label="x", required=True, max_age_ms=max_age_ms, now_ms=now_ms, display_path=path.name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path)}, env_files=False)


# ---- data timestamp vs mtime -------------------------------------------------------------------


def test_touching_an_old_frames_file_does_not_make_it_fresh(tmp_path):
    path = frames_file(tmp_path / "frames.json", [NOW - 30 * MIN, NOW - 10 * MIN])
    set_mtime(path, NOW)  # the file was just rewritten (or touched) ...
    row = check(path)
    assert row["age_source"] == "data" and row["payload_latest_ts_ms"] == NOW - 10 * MIN
    assert row["age_sec"] == 600.0 and row["stale"] is True and row["ok"] is False  # ... but its data is 10 min old
    assert row["error"] is None


def test_an_old_mtime_does_not_make_fresh_data_stale(tmp_path):
    path = frames_file(tmp_path / "frames.json", [NOW - 2 * MIN, NOW - MIN])
    set_mtime(path, NOW - 3_600_000)
    row = check(path)
    assert (row["ok"], row["stale"], row["age_sec"], row["age_source"]) == (True, False, 60.0, "data")


def test_frames_age_uses_the_max_bar_end_whatever_the_order_and_falls_back_to_event_ts(tmp_path):
    path = frames_file(tmp_path / "frames.json", [NOW - MIN, NOW - 5 * MIN, NOW - 3 * MIN])
    assert check(path)["payload_latest_ts_ms"] == NOW - MIN
    payload = orjson.loads(path.read_bytes())
    for f in payload["frames"]:
        del f["window"]
    payload["frames"][2]["event_ts_ms"] = NOW - 2_000
    json_file(path, payload)
    assert check(path)["payload_latest_ts_ms"] == NOW - 2_000


def test_a_frames_file_with_no_bars_is_not_ok_even_if_just_written(tmp_path):
    path = frames_file(tmp_path / "frames.json", [])
    set_mtime(path, NOW)
    row = check(path)
    assert (row["ok"], row["error"], row["age_source"]) == (False, "no_data_timestamp", "mtime")


def test_a_payload_without_any_timestamp_falls_back_to_the_mtime(tmp_path):
    path = json_file(tmp_path / "overview.json", {"schema_version": "market.overview.v1", "summary": "x"})
    set_mtime(path, NOW - MIN)
    fresh = check(path)
    assert (fresh["ok"], fresh["age_source"], fresh["age_sec"], fresh["error"]) == (True, "mtime", 60.0, None)
    set_mtime(path, NOW - 10 * MIN)
    assert check(path)["stale"] is True


@pytest.mark.parametrize(
    ("payload", "latest"),
    [
        ({"latest_ts_ms": NOW - MIN, "as_of_ts_ms": NOW, "generated_at": "2026-02-13T07:03:00Z"}, NOW - MIN),
        ({"as_of_ts_ms": NOW - 2 * MIN, "generated_at": "2026-02-13T07:03:00Z"}, NOW - 2 * MIN),
        ({"ts_ms": NOW - 3 * MIN}, NOW - 3 * MIN),
        ({"generated_at_ts_ms": NOW - 4 * MIN}, NOW - 4 * MIN),
        ({"generated_at": "2026-02-13T07:02:00.000Z"}, NOW - MIN),
        ({"generated_at": "2026-02-13T15:01:00+08:00"}, NOW - 2 * MIN),
        ({"generated_at": "2026-02-13 15:01:00"}, None),  # naive: zone unknown, not guessed
        ({"latest_ts_ms": None, "as_of_ts_ms": True, "ts_ms": "soon"}, None),
    ],
)
def test_payload_timestamp_keys_in_priority_order(tmp_path, payload, latest):
    path = json_file(tmp_path / "p.json", {"schema_version": "s", **payload})
    row = check(path)
    assert row["payload_latest_ts_ms"] == latest
    assert row["age_source"] == ("data" if latest is not None else "mtime")


def test_generated_at_is_reported_as_written(tmp_path):
    path = json_file(tmp_path / "b.json", {"schema_version": "market.breadth.v1", "generated_at": "2026-02-13T07:03:00.000Z", "latest_ts_ms": NOW})
    row = check(path)
    assert (row["payload_schema"], row["payload_generated_at"]) == ("market.breadth.v1", "2026-02-13T07:03:00.000Z")


def test_a_bar_ending_in_the_future_counts_as_age_zero(tmp_path):
    row = check(frames_file(tmp_path / "f.json", [NOW + 30_000]))
    assert (row["age_sec"], row["ok"]) == (0.0, True)


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "exists"),
    [
        (lambda p: None, "file_not_found", False),
        (lambda p: p.mkdir(), "not_a_file", False),
        (lambda p: p.write_text("{ torn"), "invalid_json", True),
        (lambda p: p.write_text("[1, 2]"), "not_an_object", True),
    ],
)
def test_error_codes(tmp_path, make, error, exists):
    path = tmp_path / "live.json"
    make(path)
    row = check(path)
    assert (row["error"], row["exists"], row["ok"], row["stale"]) == (error, exists, False, True)


def test_row_has_every_documented_field_and_no_absolute_path(tmp_path):
    row = check(frames_file(tmp_path / "frames.json", [NOW]))
    assert list(row) == [
        "label", "file", "required", "max_age_sec", "exists", "ok", "stale", "age_sec", "age_source",
        "mtime_epoch", "size_bytes", "error", "payload_schema", "payload_generated_at", "payload_latest_ts_ms",
    ]  # fmt: skip
    assert row["file"] == "frames.json" and row["max_age_sec"] == 180 and row["size_bytes"] > 0


# ---- run_checks --------------------------------------------------------------------------------


def daily_file(path: Path, days: list[str], **top) -> Path:
    payload = {"schema_version": "market.frames.v1", "market": "CN-A", "mode": "real", "provider": "t", **top}
    payload["frames"] = [
        {"instrument": {"symbol": "600519.SH"}, "interval": "1d", "bar": {"close": 10.0},
         "window": {"start_ts_ms": sh(day), "end_ts_ms": sh(day, 15), "trading_day": day}}
        for day in days
    ]
    return json_file(path, payload)


def sh(day: str, hour: int = 0, minute: int = 0) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    y, m, d = map(int, day.split("-"))
    return int(datetime(y, m, d, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)


def write_cn_files(settings: Settings, *, news_latest: int = NOW - 3_600_000) -> None:
    frames_file(settings.resolve(settings.live_frames_path_cn), [NOW - MIN])
    daily_file(settings.resolve(settings.live_daily_path_cn), ["2026-02-11", "2026-02-12"])
    json_file(settings.resolve(settings.market_overview_path_cn), {"latest_ts_ms": NOW - 30_000})
    json_file(settings.resolve(settings.news_digest_path_cn), {"latest_ts_ms": news_latest})
    json_file(settings.resolve(settings.market_breadth_path_cn), {"breadth": {}, "as_of_ts_ms": NOW - 30_000})


def test_fresh_cn_files_are_ok_and_missing_us_files_count_only_as_optional(settings):
    write_cn_files(settings)
    report = run_checks(settings, NOW)
    assert (report["ts_ms"], report["ok"], report["required_fail_count"], report["optional_fail_count"]) == (NOW, True, 0, 4)
    assert [c["label"] for c in report["checks"]] == [c.label for c in DEFAULT_CHECKS]
    assert [c["required"] for c in report["checks"]] == [True] * 5 + [False] * 4
    assert freshness.exit_code(report, strict=True) == 0


def test_a_stale_required_file_fails_the_report(settings):
    write_cn_files(settings, news_latest=NOW - 13 * 3_600_000)  # news budget is 12 h
    report = run_checks(settings, NOW)
    assert (report["ok"], report["required_fail_count"], report["optional_fail_count"]) == (False, 1, 4)
    [news] = [c for c in report["checks"] if c["label"] == "cn_a_news_digest"]
    assert (news["stale"], news["max_age_sec"], news["age_sec"]) == (True, 43200, 46800.0)
    assert freshness.exit_code(report, strict=True) == freshness.EXIT_REQUIRED_STALE == 1
    assert freshness.exit_code(report, strict=False) == 0


def test_a_stale_optional_file_does_not_fail_the_report(settings):
    write_cn_files(settings)
    frames_file(settings.resolve(settings.live_frames_path_us), [NOW - 3_600_000])
    json_file(settings.resolve(settings.market_breadth_path_us), {"latest_ts_ms": NOW})
    report = run_checks(settings, NOW)
    assert (report["ok"], report["required_fail_count"], report["optional_fail_count"]) == (True, 0, 3)


def test_windows_come_from_the_settings_with_node_defaults(tmp_path):
    defaults = run_checks(Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path)}, env_files=False), NOW)
    assert [c["max_age_sec"] for c in defaults["checks"]] == [180, 180, 180, 43200, 180] + [180, 180, 43200, 180]
    tuned = Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path), "MARKET_BREADTH_STALE_MS": "600000"}, env_files=False)
    assert run_checks(tuned, NOW)["checks"][4]["max_age_sec"] == 600


def test_paths_are_shown_relative_to_the_root_or_as_a_bare_name(tmp_path):
    outside = tmp_path / "elsewhere" / "frames.custom.json"
    settings = Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path / "root"), "LIVE_FRAMES_PATH_CN": str(outside)}, env_files=False)
    files = [c["file"] for c in run_checks(settings, NOW)["checks"]]
    assert files[0] == "frames.custom.json"
    assert files[1] == "data/live/onlytrade/frames.1d.json"
    assert files[2] == "data/live/onlytrade/market_overview.cn-a.json"
    assert not any(f.startswith("/") for f in files)


def test_a_full_size_frames_file_is_scanned_whole(tmp_path):
    # 20k frames (the producer's bound), with the newest bar not at the end of the list.
    ends = [NOW - (20_000 - i) * 1_000 for i in range(20_000)]
    ends[123] = NOW - 500
    row = check(frames_file(tmp_path / "frames.json", ends))
    assert row["payload_latest_ts_ms"] == NOW - 500 and row["ok"] is True


def test_a_cache_skips_reparsing_until_the_file_changes(tmp_path, monkeypatch):
    path = frames_file(tmp_path / "frames.json", [NOW - MIN])
    cache = freshness.FreshnessCache()
    assert check_file(path, label="x", required=True, max_age_ms=180_000, now_ms=NOW, display_path="f", cache=cache)["ok"]
    parses = []
    real = freshness._read_payload_info
    monkeypatch.setattr(freshness, "_read_payload_info", lambda p: parses.append(p) or real(p))
    later = check_file(path, label="x", required=True, max_age_ms=180_000, now_ms=NOW + 5 * MIN, display_path="f", cache=cache)
    assert parses == [] and later["stale"] is True and later["age_sec"] == 360.0  # age still moves with now
    frames_file(path, [NOW + 4 * MIN])
    set_mtime(path, NOW + 4 * MIN)
    fresh = check_file(path, label="x", required=True, max_age_ms=180_000, now_ms=NOW + 5 * MIN, display_path="f", cache=cache)
    assert parses == [path] and fresh["ok"] is True


# ---- issue 8: frames contract, future bars, mode label, the session and the daily history ------


def frames_check(path: Path, now_ms: int, **kw) -> dict:
    return check_file(path, label="x", required=True, max_age_ms=180_000, now_ms=now_ms, display_path="f",
                      kind=freshness.SESSION, frames=True, **kw)


def test_a_frames_payload_without_a_frames_list_is_an_error_not_ok_by_mtime(tmp_path):
    path = json_file(tmp_path / "f.json", {"schema_version": "market.frames.v1", "latest_ts_ms": NOW})
    set_mtime(path, NOW)
    row = frames_check(path, NOW)
    assert (row["ok"], row["error"]) == (False, "not_market_frames")


def test_bars_beyond_one_bar_of_skew_make_the_file_invalid(tmp_path):
    assert frames_check(frames_file(tmp_path / "a.json", [NOW + 50_000]), NOW)["ok"] is True  # a forming bar
    row = frames_check(frames_file(tmp_path / "b.json", [NOW - MIN, NOW + 10 * MIN]), NOW)
    assert (row["ok"], row["error"]) == (False, "data_in_future")


def test_strict_mode_refuses_frames_not_labelled_real(tmp_path):
    mock = frames_file(tmp_path / "m.json", [NOW - MIN], mode="mock")
    assert frames_check(mock, NOW)["ok"] is True
    assert frames_check(mock, NOW, require_real=True)["error"] == "mode_not_real"
    unlabelled = json_file(tmp_path / "u.json", {"frames": [frame("600519.SH", NOW - MIN)]})
    assert frames_check(unlabelled, NOW, require_real=True)["error"] == "mode_not_real"


@pytest.mark.parametrize(
    ("now", "phase", "fresh"),
    [
        (sh("2026-02-13", 8, 50), "pre_open", True),  # before the open: yesterday's close is the newest data
        (sh("2026-02-13", 9, 31), "open", True),  # just opened: the first bars are being collected
        (sh("2026-02-13", 9, 40), "open", False),  # 10 min after the open, no new bar: stale
        (sh("2026-02-14", 10), "closed", False),  # Saturday: the last session is Friday's, not Thursday's
    ],
)
def test_intraday_freshness_is_judged_against_the_last_session(tmp_path, now, phase, fresh):
    thursday_close = sh("2026-02-12", 15)
    row = frames_check(frames_file(tmp_path / "f.json", [thursday_close - MIN, thursday_close]), now)
    assert row["ok"] is fresh, row
    assert freshness.session_freshness.phase(now) == phase


def test_lunch_break_is_pre_open_and_judged_against_the_morning_close(tmp_path):
    lunch = sh("2026-02-13", 12)
    row = frames_check(frames_file(tmp_path / "f.json", [sh("2026-02-13", 11, 30)]), lunch)
    assert row["ok"] is True and freshness.session_freshness.phase(lunch) == "pre_open"
    assert frames_check(frames_file(tmp_path / "g.json", [sh("2026-02-13", 11, 0)]), lunch)["ok"] is False


@pytest.mark.parametrize(
    ("now", "newest", "ok"),
    [
        (sh("2026-02-13", 8, 50), "2026-02-12", True),
        (sh("2026-02-13", 8, 50), "2026-02-11", False),
        (sh("2026-02-16", 8, 50), "2026-02-13", True),  # Monday: the previous trading day is Friday
        (sh("2026-02-16", 8, 50), "2026-02-12", False),
        (sh("2026-02-13", 16), "2026-02-13", True),  # after the close, today's bar
    ],
)
def test_daily_history_must_end_on_the_previous_trading_day(tmp_path, now, newest, ok):
    path = daily_file(tmp_path / "d.json", ["2026-02-10", newest])
    row = check_file(path, label="d", required=True, max_age_ms=180_000, now_ms=now, display_path="d",
                     kind=freshness.DAILY, frames=True)
    assert row["ok"] is ok and row["newest_trading_day"] == newest


def test_preflight_report_carries_the_phase(settings):
    write_cn_files(settings)
    assert run_checks(settings, sh("2026-02-13", 9, 0))["phase"] == "pre_open"
    assert run_checks(settings, NOW)["phase"] == "closed"
