"""The shipped replay pack makes a show: every pooled agent has enough daily context on both days,
focus only falls on symbols the replay day covers, and no agent ever sees its day's daily bar."""

from __future__ import annotations

import orjson
import pytest

from runtime_api.market.bars import FrameIndex
from runtime_api.market.replay import ReplayEngine

from .conftest import data_of, make_settings, open_api

pytestmark = pytest.mark.anyio

DAY1, DAY2 = "2026-02-10", "2026-02-13"
DAY_BARS = 240  # both days of the pack have 240 bars on the timeline
DAILY_BEFORE = {DAY1: 108, DAY2: 111}  # daily bars in frames.1d.111.json strictly before each day


def pooled_agents(root) -> list[str]:
    out = []
    for manifest in sorted((root / "agents").glob("*/agent.json")):
        m = orjson.loads(manifest.read_bytes())
        if m.get("stock_pool"):
            out.append(m["agent_id"])
    return out


async def start_agents(api, agent_ids: list[str]) -> None:
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    for agent_id in agent_ids:
        data_of(await api.control(f"/api/agents/{agent_id}/register"))
        data_of(await api.control(f"/api/agents/{agent_id}/start"))


async def step_to(api, cursor: int) -> dict:
    """Put the cursor one bar before `cursor` and step onto it: one forced round at exactly that bar."""
    data_of(await api.control("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": cursor - 1}))
    step = data_of(await api.control("/api/replay/runtime/control", {"action": "step", "bars": 1}))
    assert step["state"]["cursor_index"] == cursor and step["cycle"]["ran"] is True
    return step


def last_audit(root, agent_id: str) -> dict:
    lines = []
    for path in sorted((root / "data/audit/decision_audit" / agent_id).glob("*.jsonl")):
        lines += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return lines[-1]


def trading_days(frames: list[dict]) -> list[str]:
    return [f["window"]["trading_day"] for f in frames]


async def test_every_pooled_agent_is_ready_on_both_replay_days(api, root):
    agents = pooled_agents(root)
    assert len(agents) == 6  # demo_momentum, demo_reversion, t_001..t_004
    await start_agents(api, agents)
    for day, cursor in ((DAY1, 119), (DAY2, DAY_BARS + 119), (DAY2, 2 * DAY_BARS - 1)):
        step = await step_to(api, cursor)
        assert step["state"]["trading_day"] == day
        assert {d["trader_id"] for d in step["cycle"]["decisions"]} == set(agents)
        for agent_id in agents:
            ready = last_audit(root, agent_id)["data_readiness"]
            assert ready["level"] == "OK", (agent_id, day, ready["reasons"])
            metrics = ready["metrics"]
            assert metrics["daily_frames"] == DAILY_BEFORE[day] >= metrics["required_daily_frames"]
            assert metrics["intraday_frames"] >= metrics["required_intraday_frames"]


async def test_focus_never_falls_on_a_symbol_the_replay_day_does_not_cover(api, root):
    await start_agents(api, ["demo_momentum", "demo_reversion", "t_001", "t_003"])
    covered = {DAY1: {"000858.SZ", "300750.SZ", "600036.SH", "600519.SH", "601318.SH"}}
    for day, first in ((DAY1, 119), (DAY2, DAY_BARS + 60)):
        for offset in range(5):  # five rounds: the round-robin focus walks through every candidate
            step = await step_to(api, first + offset * 3)
            for decision in step["cycle"]["decisions"]:
                agent_id, symbol = decision["trader_id"], decision["decision"]["symbol"]
                audit = last_audit(root, agent_id)
                assert "data_too_stale" not in audit["data_readiness"]["reasons"], (agent_id, symbol)
                if agent_id.startswith("demo_") and day == DAY2:
                    assert symbol == "600519.SH"  # the only pool symbol 2026-02-13 covers
                if agent_id.startswith("t_") and day == DAY1:
                    assert symbol == "600519.SH"  # the only pool symbol 2026-02-10 covers
                if day in covered:
                    assert symbol in covered[day]
            latest = data_of(await api.get("/api/decisions/latest", params={"trader_id": "demo_momentum", "limit": 1}))
            if day == DAY2:
                assert latest[0]["candidate_coins"] == ["600519.SH"]


@pytest.fixture
async def api_with_later_bars(root):
    """The app on the shipped pack whose daily file also holds 2026-02-13 and 2026-02-16 bars (each
    symbol's 2026-02-12 bar moved 1 and 4 days on): both replay days then have their own and later bars."""
    path = root / "data/replay/cn-a/history/frames.1d.111.json"
    payload = orjson.loads(path.read_bytes())
    last = {}
    for frame in payload["frames"]:
        last[frame["instrument"]["symbol"]] = frame
    for frame in last.values():
        for days, label in ((1, DAY2), (4, "2026-02-16")):
            later = orjson.loads(orjson.dumps(frame))
            for key in ("start_ts_ms", "end_ts_ms"):
                later["window"][key] += days * 86_400_000
            later["window"]["trading_day"] = label
            later["bar"]["close"] = 9999.0  # unmistakable if it ever leaks
            payload["frames"].append(later)
    path.write_bytes(orjson.dumps(payload))
    handle, lifespan = await open_api(make_settings(root))
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.mark.parametrize("day, cursors", [(DAY1, (0, 119, DAY_BARS - 1)), (DAY2, (DAY_BARS, DAY_BARS + 130, 2 * DAY_BARS - 1))])
async def test_an_agent_replaying_a_day_never_sees_that_days_daily_bar_or_a_later_one(api_with_later_bars, root, day, cursors):
    api = api_with_later_bars
    await start_agents(api, ["t_001", "demo_momentum"])
    for cursor in cursors:  # the day's first bar, the middle, its last bar
        if cursor == 0:
            data_of(await api.control("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": 0}))
            step = None
        else:
            step = await step_to(api, cursor)
        for symbol in ("600519.SH", "601318.SH", "002131.SZ"):
            frames = data_of(await api.get("/api/market/frames", params={"symbol": symbol, "interval": "1d", "limit": 2000}))["frames"]
            assert max(trading_days(frames)) < day, (symbol, cursor)
            assert len(frames) == DAILY_BEFORE[day] and all(f["bar"]["close"] != 9999.0 for f in frames)
            context = data_of(await api.get("/api/agent/market-context", params={"trader_id": "t_001", "symbol": symbol, "daily_limit": 2000}))
            assert max(trading_days(context["daily"]["frames"])) < day
            assert context["daily"]["frame_count"] == DAILY_BEFORE[day]
        if step is not None:  # the decisions themselves were made on exactly the bars before the day
            for agent_id in ("t_001", "demo_momentum"):
                assert last_audit(root, agent_id)["data_readiness"]["metrics"]["daily_frames"] == DAILY_BEFORE[day]
            memory = data_of(await api.get("/api/agent/memory", params={"trader_id": "t_001"}))
            assert "9999" not in orjson.dumps(memory).decode()


def bar(symbol: str, start: int, day: str) -> dict:
    return {"instrument": {"symbol": symbol}, "interval": "1m", "window": {"start_ts_ms": start, "end_ts_ms": start + 60_000, "trading_day": day}}


def test_symbols_at_cursor_are_those_with_a_bar_on_the_cursors_day_so_far():
    t0 = 1_770_000_000_000
    day1 = [bar("A", t0 + i * 60_000, "d1") for i in range(3)] + [bar("B", t0 + i * 60_000, "d1") for i in range(3)]
    t1 = t0 + 86_400_000
    day2 = [bar("A", t1 + i * 60_000, "d2") for i in range(4)] + [bar("C", t1 + i * 60_000, "d2") for i in (2, 3)]
    replay = ReplayEngine(FrameIndex(day1 + day2), warmup_bars=1, now_ms=lambda: 0)
    assert replay.symbols_at_cursor() == {"A", "B"}
    replay.set_cursor(3)  # d2's first bar: B has no bar on d2 (only older ones), C starts two bars later
    assert replay.trading_day() == "d2" and replay.symbols_at_cursor() == {"A"}
    replay.set_cursor(5)
    assert replay.symbols_at_cursor() == {"A", "C"}
    assert ReplayEngine(FrameIndex([]), now_ms=lambda: 0).symbols_at_cursor() == set()
