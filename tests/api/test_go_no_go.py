"""The go/no-go before the open: judged against the last session, green on complete files, and the
same files turn stale once the session runs without new bars. Time is injected, nothing sleeps."""

from __future__ import annotations

import pytest

from runtime_api.state.storage import write_json_atomic

from .conftest import data_of, make_settings, open_api
from .live_market import move_clock, run_jobs, sh_ms, vendor_at

pytestmark = pytest.mark.anyio

LIVE = {"RUNTIME_DATA_MODE": "live_file", "STRICT_LIVE_MODE": "true", "AGENT_RUNTIME_CYCLE_MS": "120000"}
FRIDAY_CLOSE_RUN = sh_ms(2026, 2, 13, 15, 3)  # the frames job's last run of the session
NEXT_OPEN_DAY = (2026, 2, 24)  # the first trading day after the Spring Festival holiday


async def preflight_at(root, monkeypatch, now_ms: int) -> dict:
    move_clock(monkeypatch, now_ms)
    # The news job runs around the clock; its file is fresh whenever the preflight runs.
    write_json_atomic(root / "data/live/onlytrade/news_digest.cn-a.json", {"headlines": [{"title": "x"}], "latest_ts_ms": now_ms - 60_000})
    handle, lifespan = await open_api(make_settings(root, **LIVE))
    try:
        data_of(await handle.control("/api/agents/t_001/register"))
        data_of(await handle.control("/api/agents/t_001/start"))
        return data_of(await handle.get("/api/ops/live-preflight"))
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


def failing(report: dict) -> dict:
    return {name: c["reason"] for name, c in report["checks"].items() if c["level"] != "PASS" and name != "llm"}


@pytest.fixture
def friday_files(root, tmp_path, monkeypatch):
    """The files as the jobs leave them on Friday: 1m bars to the close, daily through Friday (15:20 run)."""
    from data_jobs import daily_history
    from data_jobs.vendor import RecordedVendor
    from runtime_api.settings import Settings

    fx = vendor_at(tmp_path, cut="2026-02-13 15:00:00")
    move_clock(monkeypatch, FRIDAY_CLOSE_RUN)
    run_jobs(root, fx, now_ms=FRIDAY_CLOSE_RUN)
    settings = Settings.from_env({"ONLYTRADE_ROOT": str(root)}, env_files=False)
    assert daily_history.run(settings, now_ms=sh_ms(2026, 2, 13, 15, 20), vendor=RecordedVendor(fx)).status == "ok"
    return root


async def test_before_the_open_the_go_no_go_is_green(friday_files, monkeypatch):
    report = await preflight_at(friday_files, monkeypatch, sh_ms(*NEXT_OPEN_DAY, 9, 0))
    assert report["phase"] == "pre_open" and report["checks"]["freshness"]["phase"] == "pre_open"
    assert failing(report) == {}, failing(report)
    assert report["ok"] is True
    assert report["checks"]["daily_history"]["newest_trading_day"] == "2026-02-13"
    assert report["checks"]["pool_symbols"]["agents"]["t_001"]["usable_count"] == 10


async def test_ten_minutes_after_the_open_without_a_new_bar_the_same_files_are_stale(friday_files, monkeypatch):
    report = await preflight_at(friday_files, monkeypatch, sh_ms(*NEXT_OPEN_DAY, 9, 40))
    assert report["phase"] == "open" and report["ok"] is False
    assert report["checks"]["freshness"]["level"] == "FAIL"
    pools = report["checks"]["pool_symbols"]
    assert pools["level"] == "FAIL" and set(pools["agents"]["t_001"]["unusable"].values()) == {"symbol_stale"}
    assert report["checks"]["daily_history"]["level"] == "PASS"  # yesterday's daily bar is still the newest


async def test_the_lunch_break_is_judged_against_the_morning_close(root, tmp_path, monkeypatch):
    fx = vendor_at(tmp_path, cut="2026-02-13 11:30:00")
    move_clock(monkeypatch, sh_ms(2026, 2, 13, 11, 31))
    run_jobs(root, fx, now_ms=sh_ms(2026, 2, 13, 11, 31))
    lunch = await preflight_at(root, monkeypatch, sh_ms(2026, 2, 13, 12, 10))
    assert lunch["phase"] == "pre_open" and lunch["ok"] is True and failing(lunch) == {}
    afternoon = await preflight_at(root, monkeypatch, sh_ms(2026, 2, 13, 13, 10))
    assert afternoon["ok"] is False and afternoon["checks"]["freshness"]["level"] == "FAIL"
