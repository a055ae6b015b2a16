"""Shared job mechanics: --if-open, the lock, the budget, exit codes and the summary, in-process and as real subprocesses."""

from __future__ import annotations

import io
import time

import orjson
import pytest
from dj_helpers import (
    FIXTURES,
    FRI_AFTER_CLOSE,
    FRI_EVENING,
    FRI_LUNCH,
    FRI_MORNING,
    SATURDAY,
    SPRING_FESTIVAL,
    run_job_cli,
    sh_ms,
)
from filelock import FileLock

from data_jobs import breadth, frames_collector, jobrun
from data_jobs.vendor import RecordedVendor


def test_exit_codes_are_the_documented_constants():
    assert (jobrun.EXIT_OK, jobrun.EXIT_ERROR, jobrun.EXIT_USAGE, jobrun.EXIT_LOCKED, jobrun.EXIT_BUDGET) == (0, 1, 2, 75, 124)


# ---- --if-open ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "session_reason"),
    [
        (SATURDAY, "weekend"),
        (SPRING_FESTIVAL, "holiday"),
        (FRI_LUNCH, "lunch_break"),
        (FRI_EVENING, "outside_cn_a_session"),
        (sh_ms(2026, 2, 13, 15, 6), "outside_cn_a_session"),  # past the 5-minute grace after the close
        (sh_ms(2026, 2, 13, 9, 20), "outside_cn_a_session"),
    ],
)
def test_if_open_outside_hours_skips_without_touching_anything(settings, vendor, now, session_reason):
    result = frames_collector.run(settings, now_ms=now, vendor=vendor, if_open=True)
    assert (result.status, result.reason, result.detail, result.exit_code, result.wrote) == (
        "skipped",
        "market_closed",
        session_reason,
        0,
        False,
    )
    assert vendor.calls == []
    assert not settings.resolve(settings.live_frames_path_cn).exists()
    assert not jobrun.lock_path(settings, "frames_collector").exists()


@pytest.mark.parametrize(
    "now",
    [FRI_MORNING, sh_ms(2026, 2, 13, 11, 32), sh_ms(2026, 2, 13, 14, 58), FRI_AFTER_CLOSE],
)
def test_if_open_runs_in_session_and_in_the_grace_after_it(settings, vendor, now):
    assert breadth.run(settings, now_ms=now, vendor=vendor, if_open=True).status == "ok"


def test_grace_zero_is_strictly_the_calendar(settings, vendor):
    result = breadth.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor, if_open=True, open_grace_min=0)
    assert result.reason == "market_closed"


# ---- lock --------------------------------------------------------------------------------------


def test_a_held_lock_returns_locked_at_once_without_calling_the_vendor(settings, vendor):
    lock_file = jobrun.lock_path(settings, "frames_collector")
    lock_file.parent.mkdir(parents=True)
    with FileLock(str(lock_file)):
        result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    assert (result.status, result.exit_code) == ("locked", jobrun.EXIT_LOCKED)
    assert result.summary()["status"] == "locked" and result.summary()["job"] == "frames_collector"
    assert vendor.calls == []
    # Released afterwards: the next run goes through, and other jobs never shared that lock.
    assert frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor).status == "ok"


def test_lock_contention_with_a_real_subprocess_exits_75_immediately(settings, job_env):
    lock_file = jobrun.lock_path(settings, "frames_collector")
    lock_file.parent.mkdir(parents=True)
    with FileLock(str(lock_file)):
        code, summary, _ = run_job_cli("frames_collector", "--now", str(FRI_AFTER_CLOSE), env={**job_env, "ONLYTRADE_RECORDED_DELAY_S": "30"})
    assert code == 75
    assert summary["job"] == "frames_collector" and summary["status"] == "locked" and summary["wrote"] is False
    assert summary["duration_ms"] < 1000  # it did not wait for the lock, nor call the (30 s) vendor
    assert not settings.resolve(settings.live_frames_path_cn).exists()


# ---- budget ------------------------------------------------------------------------------------


class FakeClock:
    """An injected monotonic clock; the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_exhausted_between_calls_aborts_without_writing(settings, vendor):
    frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    before = settings.resolve(settings.live_frames_path_cn).read_bytes()
    clock = FakeClock()
    original = vendor.minute_bars

    def slow_minute_bars(code):
        clock.now += 50  # every vendor call "takes" 50 s
        return original(code)

    vendor.minute_bars = slow_minute_bars
    result = frames_collector.run(settings, now_ms=FRI_AFTER_CLOSE + 60_000, vendor=vendor, budget_s=120, clock=clock)
    assert (result.status, result.exit_code, result.wrote) == ("budget_exceeded", jobrun.EXIT_BUDGET, False)
    assert len(vendor.calls) == 10 + 3  # the first run's 10, then 50 s, 100 s, 150 s > 120 s: stop
    assert settings.resolve(settings.live_frames_path_cn).read_bytes() == before


def test_hard_deadline_interrupts_a_hung_vendor_call(settings):
    hung = RecordedVendor(FIXTURES, delay_s=30)
    started = time.monotonic()
    result = breadth.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=hung, budget_s=0.3, hard_timeout=True)
    assert (result.status, result.exit_code) == ("budget_exceeded", jobrun.EXIT_BUDGET)
    assert time.monotonic() - started < 10
    assert not settings.resolve(settings.market_breadth_path_cn).exists()


def test_budget_with_a_real_subprocess_exits_124_and_keeps_the_old_file(settings, job_env):
    code, _, _ = run_job_cli("breadth", "--now", str(FRI_AFTER_CLOSE), env=job_env)
    assert code == 0
    path = settings.resolve(settings.market_breadth_path_cn)
    before = path.read_bytes()
    code, summary, elapsed = run_job_cli(
        "breadth", "--now", str(FRI_AFTER_CLOSE + 60_000), "--budget-s", "0.5", env={**job_env, "ONLYTRADE_RECORDED_DELAY_S": "30"}
    )
    assert code == 124 and summary["status"] == "budget_exceeded" and summary["wrote"] is False
    assert elapsed < 20
    assert path.read_bytes() == before


# ---- the CLI -----------------------------------------------------------------------------------


def test_cli_happy_path_prints_one_json_summary_line(settings, job_env):
    code, summary, _ = run_job_cli("frames_collector", "--now", "2026-02-13T15:03:00+08:00", env=job_env)
    assert code == 0
    assert {k: summary[k] for k in ("job", "status", "wrote", "frames", "latest_ts_ms")} == {
        "job": "frames_collector",
        "status": "ok",
        "wrote": True,
        "frames": 2410,
        "latest_ts_ms": sh_ms(2026, 2, 13, 15, 0),
    }
    assert isinstance(summary["duration_ms"], int)
    assert settings.resolve(settings.live_frames_path_cn).exists()


def test_cli_if_open_on_a_weekend_exits_0_without_writing(settings, job_env):
    code, summary, _ = run_job_cli("frames_collector", "--if-open", "--now", "2026-02-14T10:00:00", env=job_env)
    assert (code, summary["status"], summary["reason"]) == (0, "skipped", "market_closed")
    assert not settings.resolve(settings.live_frames_path_cn).exists()


def test_cli_vendor_failure_mid_run_exits_1_and_keeps_the_old_file(settings, job_env):
    assert run_job_cli("frames_collector", "--now", str(FRI_AFTER_CLOSE), env=job_env)[0] == 0
    path = settings.resolve(settings.live_frames_path_cn)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    code, summary, _ = run_job_cli("frames_collector", "--now", str(FRI_AFTER_CLOSE + 60_000), env={**job_env, "ONLYTRADE_RECORDED_FAIL_AFTER": "3"})
    assert (code, summary["status"], summary["error"]) == (1, "error", "vendor_error")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("args", "env_extra"),
    [
        (["--now", "yesterday"], {}),
        (["--symbols", "AAPL"], {}),
        ([], {"ONLYTRADE_DATA_VENDOR": "bloomberg"}),
        ([], {"PORT": "not-a-port"}),
    ],
)
def test_cli_bad_configuration_exits_2(job_env, args, env_extra):
    code, summary, _ = run_job_cli("frames_collector", *args, env={**job_env, **env_extra})
    assert (code, summary["status"], summary["error"]) == (2, "error", "invalid_configuration")


def test_parse_now_accepts_epoch_ms_and_iso_with_naive_meaning_shanghai():
    assert jobrun.parse_now(None) is None
    assert jobrun.parse_now("1770966180000") == FRI_AFTER_CLOSE
    assert jobrun.parse_now("2026-02-13T15:03:00") == FRI_AFTER_CLOSE
    assert jobrun.parse_now("2026-02-13T07:03:00Z") == FRI_AFTER_CLOSE
    with pytest.raises(ValueError):
        jobrun.parse_now("soon")


def test_summary_line_for_a_pipe_is_compact_json():
    stream = io.StringIO()
    jobrun.emit(jobrun.JobResult("breadth", "locked", jobrun.EXIT_LOCKED, duration_ms=3), stream)
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert orjson.loads(line) == {"job": "breadth", "status": "locked", "wrote": False, "latest_ts_ms": None, "duration_ms": 3}
