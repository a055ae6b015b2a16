"""The bet board: shapes and odds, placing (codes, debit, balance, replace), freeze, settlement once."""

from __future__ import annotations

import math

import pytest

from runtime_api.bets.clock import market_clock
from runtime_api.state.memory import default_snapshot
from runtime_api.services import BootError
from runtime_api.market.calendar import trading_day_of

from .conftest import AGENT, app_with, assert_error, bootstrap, data_of, make_settings, on_air

pytestmark = pytest.mark.anyio
LOBBY = (AGENT, "t_001", "t_003", "t_004")
DAY1, DAY2 = "2026-02-10", "2026-02-13"


def cursor_at(api, day: str, minute: int) -> int:
    """The first replay bar of `day` whose end is at or after `minute` (local), else the day's last bar."""
    timeline = api.ctx.svc.replay.timeline
    in_day = [i for i, ts in enumerate(timeline) if trading_day_of(ts, "CN-A") == day]
    for i in in_day:
        if market_clock("CN-A", timeline[i] + 60_000)["minute"] >= minute:
            return i
    return in_day[-1]


async def move(api, day: str, minute: int) -> None:
    data_of(await api.control("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": cursor_at(api, day, minute)}))


def set_return(api, agent: str, day: str, pct: float) -> None:
    snap = api.ctx.svc.memory.get(agent) or default_snapshot(agent, agent, api.ctx.settings, "2026-02-10T00:00:00Z")
    snap = {**snap, "daily_journal": [{"trading_day": day, "start_balance": 100000, "end_balance": 100000 * (1 + pct / 100)}]}
    api.ctx.svc.memory.save(agent, snap)


async def place(api, session: str, trader: str, stake) -> dict:
    return await api.client.post("/api/bets/place", json={"user_session_id": session, "trader_id": trader, "stake_amount": stake})


async def market(api, session: str | None = None) -> dict:
    params = {"trader_id": AGENT, **({"user_session_id": session} if session else {})}
    return data_of(await api.get("/api/bets/market", params=params))


def expected_odds(returns: dict[str, float], pools: dict[str, float], edge: float = 0.08) -> dict[str, float]:
    total = sum(pools.values())
    w = {t: math.exp(max(-20, min(20, r)) / 8) * (1 + 0.75 * (pools.get(t, 0) / total if total else 0)) for t, r in returns.items()}
    return {t: round(max(1.05, min(30, (1 - edge) / max(0.02, v / sum(w.values())))), 4) for t, v in w.items()}


async def test_market_shape_and_the_node_odds_formula(root):
    async with app_with(root) as api:
        await on_air(api, *LOBBY)
        await move(api, DAY1, 11 * 60)
        set_return(api, "t_003", DAY1, 1.0)
        set_return(api, "t_001", DAY1, -2.5)
        me = await bootstrap(api)
        data_of(await place(api, me["user_session_id"], "t_004", 300))
        board = await market(api, me["user_session_id"])
    assert board["schema_version"] == "bets.market.v1" and board["market"] == "CN-A" and board["mode"] == "replay"
    assert (board["day_key"], board["betting_open"], board["cutoff_minute"], board["close_minute"]) == (DAY1, True, 870, 900)
    assert {e["trader_id"] for e in board["entries"]} == set(LOBBY)
    odds = expected_odds({AGENT: 0, "t_001": -2.5, "t_003": 1.0, "t_004": 0}, {"t_004": 300})
    assert {e["trader_id"]: e["odds"] for e in board["entries"]} == odds
    assert [e["trader_id"] for e in board["entries"]][0] == "t_003"  # sorted by return
    assert board["totals"] == {"stake_amount": 300, "ticket_count": 1}
    assert board["my_bet"]["trader_id"] == "t_004" and board["my_bet"]["estimated_odds"] == odds["t_004"]
    assert board["my_credits"] == {"credit_points": 700, "settled_bets": 0, "win_count": 0}
    assert board["settlement"] is None and board["freeze_ts_ms"] is None


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"user_session_id": ""}, 400, "invalid_user_session_id"),
    ({"trader_id": ""}, 400, "invalid_trader_id"),
    ({"user_session_id": "usr_public_id"}, 403, "unverified_user_session"),
    ({"trader_id": "t_999"}, 404, "trader_not_available_for_bet"),
    ({"trader_id": "t_002"}, 404, "trader_not_available_for_bet"),  # a manifest, not registered
    ({"stake_amount": 1001}, 400, "insufficient_credit_points"),
])
async def test_place_errors(root, body, status, code):
    async with app_with(root) as api:
        await on_air(api, *LOBBY)
        session = (await bootstrap(api))["user_session_id"]
        assert_error(await api.client.post("/api/bets/place", json={"user_session_id": session, "trader_id": AGENT,
                                                                     "stake_amount": 10, **body}), status, code)
        assert (await market(api, session))["my_bet"] is None
        assert not (root / "data" / "bets" / "ledger.json").exists()


async def test_cutoff_and_rate_limit(root):
    async with app_with(root, BETS_PLACE_RATE_LIMIT_PER_MIN="2") as api:
        await on_air(api, *LOBBY)
        session = (await bootstrap(api))["user_session_id"]
        await move(api, DAY1, 14 * 60 + 30)
        assert (await market(api))["betting_open"] is False
        assert_error(await place(api, session, AGENT, 10), 409, "betting_closed_before_market_close_30m")
        await move(api, DAY1, 14 * 60)
        data_of(await place(api, session, AGENT, 10))
        data_of(await place(api, session, AGENT, 20))
        assert_error(await place(api, session, AGENT, 30), 429, "rate_limited")


async def test_stakes_are_debited_replaced_and_checked_against_the_balance(root):
    async with app_with(root) as api:
        await on_air(api, *LOBBY)
        session = (await bootstrap(api, "carol"))["user_session_id"]
        first = data_of(await place(api, session, AGENT, 600))
        assert first["my_credits"]["credit_points"] == 400
        replaced = data_of(await place(api, session, "t_003", 900.4))  # the 600 come back first
        assert replaced["my_credits"]["credit_points"] == 100 and replaced["my_bet"]["stake_amount"] == 900
        pools = {e["trader_id"]: (e["total_stake"], e["ticket_count"]) for e in replaced["entries"]}
        assert pools[AGENT] == (0, 0) and pools["t_003"] == (900, 1)
        assert_error(await place(api, session, AGENT, 1001), 400, "insufficient_credit_points")
        assert data_of(await place(api, session, AGENT, "lots"))["my_bet"]["stake_amount"] == 10  # Node's default stake
        credits = data_of(await api.get("/api/bets/credits", params={"user_session_id": session, "limit": 0}))
    assert credits["schema_version"] == "bets.credits.v1" and credits["count"] == 1
    row = credits["leaderboard"][0]
    assert row["credit_points"] == 990 and row["user_nickname"] == "carol" and row["user_session_id"].startswith("usr_")
    assert session not in str(credits["leaderboard"]) and credits["my_credits"]["credit_points"] == 990


async def test_settlement_once_from_the_frozen_returns_among_all_lobby_traders(root):
    async with app_with(root) as api:
        await on_air(api, *LOBBY)
        bets = api.ctx.extra["audience"].bets
        alice, carol = (await bootstrap(api, "alice"))["user_session_id"], (await bootstrap(api, "carol"))["user_session_id"]
        await move(api, DAY1, 10 * 60)
        data_of(await place(api, alice, AGENT, 100))
        data_of(await place(api, carol, "t_003", 200))
        for agent, pct in ((AGENT, 0.5), ("t_003", 1.0), ("t_004", 2.0)):
            set_return(api, agent, DAY1, pct)

        await move(api, DAY1, 14 * 60 + 35)
        assert await bets.tick() == []
        frozen = await market(api)
        assert frozen["freeze_ts_ms"] and {e["trader_id"]: e["daily_return_pct"] for e in frozen["entries"]}["t_004"] == 2.0
        set_return(api, "t_004", DAY1, -9.0)  # after the cutoff: too late to matter
        set_return(api, AGENT, DAY1, 5.0)

        await move(api, DAY1, 15 * 60)
        assert await bets.tick() == [f"CN-A::{DAY1}"]
        writes = bets.ledger.writes
        assert await bets.tick() == [] and bets.ledger.writes == writes  # once
        settled = await market(api, alice)
        # The best trader of the day won although nobody bet on it (Node: only staked traders could win).
        assert settled["settlement"]["winning_trader_ids"] == ["t_004"] and settled["settlement"]["winning_return_pct"] == 2.0
        assert settled["my_bet"]["settlement_status"] == "settled" and settled["my_bet"]["settled_is_winner"] is False
        assert settled["my_credits"] == {"credit_points": 900, "settled_bets": 1, "win_count": 0}

        # The next replayed day: carol wins and gets stake × odds back, at that day's end.
        await move(api, DAY2, 10 * 60)
        board = data_of(await place(api, carol, "t_003", 500))
        assert board["day_key"] == DAY2 and board["my_credits"]["credit_points"] == 300
        set_return(api, "t_003", DAY2, 1.5)
        odds = {e["trader_id"]: e["odds"] for e in (await market(api))["entries"]}["t_003"]
        await move(api, DAY2, 15 * 60)
        assert await bets.tick() == [f"CN-A::{DAY2}"]
        won = await market(api, carol)
    assert won["my_bet"]["settled_is_winner"] is True and won["my_bet"]["settled_credit_points"] == round(500 * odds)
    assert won["my_credits"] == {"credit_points": 300 + round(500 * odds), "settled_bets": 2, "win_count": 1}
    assert bets.settlements == 2


async def test_a_wrapped_replay_starts_new_day_states(root):
    async with app_with(root) as api:
        await on_air(api, *LOBBY)
        bets = api.ctx.extra["audience"].bets
        session = (await bootstrap(api))["user_session_id"]
        await move(api, DAY1, 10 * 60)
        data_of(await place(api, session, AGENT, 10))
        await bets.tick()
        data_of(await api.control("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": len(api.ctx.svc.replay.timeline) - 1}))
        await bets.tick()  # leaving DAY1 settles it
        assert bets.ledger.state["days"][f"CN-A::{DAY1}"]["settlement_status"] == "settled"
        data_of(await api.control("/api/replay/runtime/control", {"action": "step", "bars": 1}))  # wraps to the start
        await bets.tick()
        assert bets.clock("CN-A")["state_id"] == f"CN-A::{DAY1}#r1"
        board = data_of(await place(api, session, AGENT, 10))
    assert board["betting_open"] is True and board["my_bet"]["settlement_status"] == "pending"


async def test_a_corrupt_ledger_stops_boot_and_is_kept(root):
    from runtime_api.app import create_app

    ledger = root / "data" / "bets" / "ledger.json"
    ledger.parent.mkdir(parents=True)
    ledger.write_text("{not json")
    with pytest.raises(BootError, match="corrupt bets ledger"):
        create_app(make_settings(root))
    assert ledger.read_text() == "{not json"
