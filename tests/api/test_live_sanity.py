"""Strict live mode judges every pool symbol: bad or missing data is left out with a visible reason,
never used to decide, mark, fill or persist; a bad frames file makes the agent hold."""

from __future__ import annotations

import math

import pytest

from .conftest import data_of, make_settings, open_api
from .live_market import SESSION_NOW, T001_POOL, edit_frames_file, edit_minute_bars, move_clock, run_jobs, vendor_at

pytestmark = pytest.mark.anyio

LIVE = {
    "RUNTIME_DATA_MODE": "live_file",
    "STRICT_LIVE_MODE": "true",
    "AGENT_RUNTIME_CYCLE_MS": "120000",  # the test drives the cycles
}


async def one_cycle(root, **env) -> tuple[dict, dict, dict, dict]:
    """Boot, start t_001, run one cycle: (cycle summary, latest decision, runtime status entry, preflight)."""
    handle, lifespan = await open_api(make_settings(root, **LIVE, **env))
    try:
        data_of(await handle.control("/api/agents/t_001/register"))
        data_of(await handle.control("/api/agents/t_001/start"))
        summary = await handle.ctx.runtime.run_cycle()
        decisions = data_of(await handle.get("/api/decisions/latest", params={"trader_id": "t_001", "limit": 1}))
        status = data_of(await handle.get("/api/agent/runtime/status"))
        preflight = data_of(await handle.get("/api/ops/live-preflight"))
        memory = data_of(await handle.get("/api/agent/memory", params={"trader_id": "t_001"}))
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)
    [trader] = [t for t in status["traders"] if t["trader_id"] == "t_001"]
    [latest] = decisions
    return summary, {"latest": latest, "memory": memory}, {"trader": trader, "status": status}, preflight


def decision_of(summary: dict) -> dict:
    [entry] = [d for d in summary["decisions"] if d["trader_id"] == "t_001"]
    return entry["decision"]


def candidates_of(seen: dict) -> list[str]:
    record = seen["latest"] or {}
    return list(record.get("candidate_coins") or [])


@pytest.fixture
def market(root, tmp_path, monkeypatch):
    """The recorded vendor cut at 10:30 on a trading day, with the clock there."""
    move_clock(monkeypatch, SESSION_NOW)
    return vendor_at(tmp_path)


async def test_clean_data_every_pool_symbol_is_usable_and_the_cycle_is_ready(root, market):
    run_jobs(root, market)
    summary, seen, runtime, preflight = await one_cycle(root)
    assert summary["ran"] is True
    assert sorted(candidates_of(seen)) == sorted(T001_POOL)
    assert runtime["trader"]["excluded_symbols"] == {}
    assert "data readiness ERROR" not in decision_of(summary).get("reasoning", "")
    checks = preflight["checks"]
    assert checks["pool_symbols"]["level"] == "PASS"
    agent = checks["pool_symbols"]["agents"]["t_001"]
    assert (agent["usable_count"], agent["intraday_usable_count"], agent["daily_usable_count"]) == (10, 10, 10)
    assert checks["daily_history"]["level"] == "PASS" and checks["freshness"]["level"] == "PASS"
    assert preflight["phase"] == "open"


async def test_a_price_limit_break_leaves_the_symbol_out_and_never_marks(root, market):
    # 002050.SZ closed 2026-02-12 at 52.67; a 10:30 print of +50 % breaks its ±10 % main-board limit.
    edit_minute_bars(market, "002050", lambda df: df.assign(收盘=df["收盘"].where(df.index < len(df) - 1, df["收盘"] * 1.5)))
    run_jobs(root, market)
    summary, seen, runtime, preflight = await one_cycle(root)
    assert runtime["trader"]["excluded_symbols"] == {"002050.SZ": "price_limit_break"}
    assert decision_of(summary)["symbol"] != "002050.SZ"
    assert "002050.SZ" not in candidates_of(seen)
    pools = preflight["checks"]["pool_symbols"]
    assert pools["level"] == "WARN" and "002050.SZ" in pools["reason"]
    assert pools["agents"]["t_001"]["unusable"] == {"002050.SZ": "price_limit_break"}
    assert preflight["ok"] is True  # WARN: go-live possible, but look


async def test_an_absurd_tick_is_never_used_to_mark_equity(root, market):
    # The 1e300 tick of the issue: not a plausible price, so no 1e+302 equity is ever written.
    edit_minute_bars(market, "600519", lambda df: df.assign(收盘=df["收盘"].where(df.index < len(df) - 1, 1e300)))
    run_jobs(root, market)
    summary, seen, runtime, _ = await one_cycle(root)
    assert runtime["trader"]["excluded_symbols"] == {"600519.SH": "invalid_price"}
    stats = seen["memory"]["stats"] if "stats" in seen["memory"] else seen["memory"]
    total = stats.get("latest_total_balance")
    assert total is not None and math.isfinite(total) and total < 1e7


async def test_a_non_positive_close_is_invalid(root, market):
    edit_minute_bars(market, "600089", lambda df: df.assign(收盘=df["收盘"].where(df.index < len(df) - 1, 0.0)))
    run_jobs(root, market)
    summary, seen, runtime, preflight = await one_cycle(root)
    assert runtime["trader"]["excluded_symbols"] == {"600089.SH": "invalid_price"}
    assert "600089.SH" not in candidates_of(seen)
    assert preflight["checks"]["pool_symbols"]["agents"]["t_001"]["unusable"] == {"600089.SH": "invalid_price"}


async def test_a_stale_symbol_is_left_out_and_named(root, market):
    edit_minute_bars(market, "300058", lambda df: df[df["时间"] <= "2026-02-13 10:00:00"])
    run_jobs(root, market)
    summary, seen, runtime, preflight = await one_cycle(root)
    assert runtime["trader"]["excluded_symbols"] == {"300058.SZ": "symbol_stale"}
    assert "300058.SZ" not in candidates_of(seen)
    pools = preflight["checks"]["pool_symbols"]
    assert pools["level"] == "WARN" and pools["agents"]["t_001"]["intraday_usable_count"] == 9


async def test_bars_in_the_future_invalidate_the_file_and_the_agent_holds(root, market):
    # A vendor clock 20 minutes ahead: bars up to 10:50 at 10:30.
    fx = vendor_at(market.parent / "ahead", cut="2026-02-13 10:50:00")
    run_jobs(root, fx)
    summary, seen, runtime, preflight = await one_cycle(root, AGENT_SESSION_GUARD_ENABLED="false")
    decision = decision_of(summary)
    assert decision["action"] == "hold" and "no_usable_symbol" in decision["reasoning"]
    assert set(runtime["trader"]["excluded_symbols"].values()) == {"live_file_error:data_in_future"}
    assert candidates_of(seen) == [decision["symbol"]]  # only the placeholder of the forced hold
    assert seen["latest"]["positions"] == [] and seen["memory"]["holdings"] == []
    assert preflight["checks"]["freshness"]["level"] == "FAIL" and preflight["checks"]["freshness"]["reason"] == "data_in_future"
    assert preflight["ok"] is False


async def test_frames_labelled_mock_are_refused_in_strict_mode(root, market):
    run_jobs(root, market)
    edit_frames_file(root, lambda p: p.update(mode="mock"))
    summary, seen, runtime, preflight = await one_cycle(root, AGENT_SESSION_GUARD_ENABLED="false")
    decision = decision_of(summary)
    assert decision["action"] == "hold"
    assert set(runtime["trader"]["excluded_symbols"].values()) == {"live_file_error:mode_not_real"}
    assert preflight["checks"]["freshness"]["reason"] == "mode_not_real"


async def test_with_the_guard_off_a_stale_file_still_forces_holds(root, market, monkeypatch):
    run_jobs(root, market)
    move_clock(monkeypatch, SESSION_NOW + 20 * 60_000)  # 20 minutes later, no new bar
    summary, seen, runtime, preflight = await one_cycle(root, AGENT_SESSION_GUARD_ENABLED="false")
    decision = decision_of(summary)
    assert decision["action"] == "hold" and "no_usable_symbol" in decision["reasoning"]
    assert set(runtime["trader"]["excluded_symbols"]) == set(T001_POOL)
    assert all(r.startswith("live_file_stale") for r in runtime["trader"]["excluded_symbols"].values())
    assert preflight["checks"]["pool_symbols"]["level"] == "FAIL"
    assert preflight["checks"]["freshness"]["level"] == "FAIL"


async def test_a_frames_payload_without_frames_is_an_error(root, market):
    run_jobs(root, market)
    edit_frames_file(root, lambda p: p.pop("frames"))
    with pytest.raises(Exception, match="live_frames_path_cn_unreadable"):
        await open_api(make_settings(root, **LIVE))  # the runtime refuses to boot on it, as on any unreadable file


async def test_a_daily_file_not_labelled_real_is_refused_and_every_symbol_holds(root, market):
    run_jobs(root, market)
    path = root / "data/live/onlytrade/frames.1d.json"
    path.write_bytes(path.read_bytes().replace(b'"mode":"real"', b'"mode":"mock"'))
    summary, seen, runtime, preflight = await one_cycle(root)
    decision = decision_of(summary)
    assert decision["action"] == "hold" and "no_usable_symbol" in decision["reasoning"]
    assert set(runtime["trader"]["excluded_symbols"].values()) == {"daily_file_error:mode_not_real"}
    assert preflight["checks"]["daily_history"]["level"] == "FAIL"
    assert preflight["checks"]["daily_history"]["reason"] == "mode_not_real"
    assert preflight["checks"]["pool_symbols"]["level"] == "FAIL"


async def test_the_daily_file_is_picked_up_when_the_job_writes_it_without_a_restart(root, market, monkeypatch):
    from data_jobs import daily_history
    from data_jobs.vendor import RecordedVendor
    from runtime_api.settings import Settings

    from .live_market import PRE_OPEN_RUN, SESSION_NOW

    run_jobs(root, market)
    daily_path = root / "data/live/onlytrade/frames.1d.json"
    daily_path.unlink()  # a fresh host: the daily job has not run yet
    handle, lifespan = await open_api(make_settings(root, **LIVE))
    try:
        data_of(await handle.control("/api/agents/t_001/register"))
        data_of(await handle.control("/api/agents/t_001/start"))
        before = data_of(await handle.get("/api/ops/live-preflight"))
        assert before["checks"]["daily_history"]["reason"] == "file_not_found"
        assert set(before["checks"]["pool_symbols"]["agents"]["t_001"]["unusable"].values()) == {"daily_file_error:file_not_found"}
        held = decision_of(await handle.ctx.runtime.run_cycle())
        assert held["action"] == "hold" and "no_usable_symbol" in held["reasoning"]

        settings = Settings.from_env({"ONLYTRADE_ROOT": str(root)}, env_files=False)
        assert daily_history.run(settings, now_ms=PRE_OPEN_RUN, vendor=RecordedVendor(market)).status == "ok"
        move_clock(monkeypatch, SESSION_NOW + 60_000)  # the file is re-checked at most once a second
        after = data_of(await handle.get("/api/ops/live-preflight"))
        assert after["checks"]["daily_history"]["level"] == "PASS" and after["checks"]["pool_symbols"]["level"] == "PASS"
        ready = decision_of(await handle.ctx.runtime.run_cycle())
        assert "no_usable_symbol" not in ready["reasoning"]
        status = data_of(await handle.get("/api/agent/runtime/status"))
        assert [t["excluded_symbols"] for t in status["traders"] if t["trader_id"] == "t_001"] == [{}]
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_an_agent_without_a_pool_is_judged_on_the_symbols_it_decides_over(root, market):
    # t_007 has no stock_pool: it decides over every symbol the market serves, and preflight judges those.
    run_jobs(root, market)
    handle, lifespan = await open_api(make_settings(root, **LIVE))
    try:
        for action in ("register", "start"):
            data_of(await handle.control(f"/api/agents/t_007/{action}"))
        pools = data_of(await handle.get("/api/ops/live-preflight"))["checks"]["pool_symbols"]
        served = handle.ctx.svc.market.symbols()
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)
    agent = pools["agents"]["t_007"]
    assert served and agent["pool_count"] == len(served)
    assert agent["level"] == "PASS" and pools["level"] == "PASS"
