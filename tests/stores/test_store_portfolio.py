"""Pure accounting: apply_decision, remark, T+1 sellable shares, portfolio input."""

from __future__ import annotations

import copy

import pytest

from runtime_api.state.memory import default_snapshot
from runtime_api.portfolio.accounting import apply_decision, portfolio_input, remark, sellable_shares

DAY1, DAY2, DAY3 = "2026-02-12", "2026-02-13", "2026-02-16"


@pytest.fixture
def book(settings, make_fill, make_record, replay_status):
    """apply_decision with the test's settings; returns the next snapshot."""

    def apply(snapshot: dict, cycle: int, ts: str, day: str = DAY1, **fill_kwargs) -> dict:
        return apply_decision(
            snapshot, record=make_record(cycle, ts), fill=make_fill(ts=ts, **fill_kwargs), trading_day=day,
            replay={**replay_status, "trading_day": day}, settings=settings, now_iso=ts,
        )

    return apply


@pytest.fixture
def fresh(settings) -> dict:
    return default_snapshot("t_001", "HS300 Momentum", settings, "2026-02-12T01:00:00.000Z")


def test_buy_then_sell_closes_one_position_with_string_order_ids(book, fresh):
    bought = book(fresh, 1, "2026-02-12T01:30:00.000Z", action="buy", qty=100, price=10, fee=1, order_id="100001")
    assert bought["stats"]["latest_available_balance"] == 98999
    assert bought["stats"]["latest_total_balance"] == 99999
    assert bought["holdings"] == [{"symbol": "600519.SH", "shares": 100, "avg_cost": 10, "mark_price": 10,
                                   "unrealized_pnl": 0, "value": 1000, "weight_pct": 1}]
    assert bought["open_lots"][0]["entry_trading_day"] == DAY1
    sold = book(bought, 2, "2026-02-13T01:35:00.000Z", DAY2, action="sell", qty=100, price=10.5, fee=1.05,
                realized=47.95, order_id=100002)
    assert sold["open_lots"] == [] and sold["holdings"] == []
    [closed] = sold["closed_positions"]
    assert closed["entry_order_id"] == "100001" and closed["exit_order_id"] == "100002"
    assert (closed["id"], closed["quantity"], closed["fee"], closed["realized_pnl"]) == (1, 100, 2.05, 47.95)
    assert closed["exchange_id"] == "sim-cn" and closed["close_reason"] == "signal_sell"
    assert sold["meta"]["next_position_id"] == 2
    assert len(sold["equity_curve"]) >= 3
    assert sold["equity_curve"][-1]["total_equity"] == sold["stats"]["latest_total_balance"] == 100047.95
    assert [e["id"] for e in sold["trade_events"]] == ["100002", "100001"]
    assert sold["trade_events"][0]["realized_pnl"] == 47.95 and sold["trade_events"][0]["position_after_qty"] == 0
    assert (sold["stats"]["wins"], sold["stats"]["losses"], sold["stats"]["sell_trades"]) == (1, 0, 1)
    assert [j["trading_day"] for j in sold["daily_journal"]] == [DAY2, DAY1]  # keyed by the real trading day (W10)


def test_fifo_across_two_lots_with_pro_rata_fees(book, fresh):
    s = book(fresh, 1, "2026-02-12T01:30:00.000Z", action="buy", qty=100, price=10, fee=1, order_id="ord_a")
    s = book(s, 2, "2026-02-13T01:30:00.000Z", DAY2, action="buy", qty=200, price=11, fee=2, order_id="ord_b")
    assert s["holdings"][0]["shares"] == 300 and s["holdings"][0]["avg_cost"] == pytest.approx(10.6667, abs=1e-4)
    s = book(s, 3, "2026-02-16T01:30:00.000Z", DAY3, action="sell", qty=150, price=12, fee=3, realized=197, order_id="ord_c")
    newest, oldest = s["closed_positions"]
    assert (oldest["id"], oldest["entry_order_id"], oldest["quantity"], oldest["fee"], oldest["realized_pnl"]) == (1, "ord_a", 100, 3, 197)
    assert (newest["id"], newest["entry_order_id"], newest["quantity"], newest["fee"], newest["realized_pnl"]) == (2, "ord_b", 50, 1.5, 48.5)
    [lot] = s["open_lots"]
    assert (lot["entry_order_id"], lot["remaining_qty"], lot["entry_qty"], lot["entry_fee_remaining"]) == ("ord_b", 150, 200, 1.5)
    assert s["holdings"][0]["shares"] == 150 and s["holdings"][0]["mark_price"] == 12
    assert s["stats"]["total_fees_paid"] == 6 and s["meta"]["next_position_id"] == 3


def test_counters_follow_execution_only(book, fresh):
    s = book(fresh, 1, "2026-02-12T01:30:00.000Z", action="buy", qty=100, price=10, executed=False)
    s = book(s, 2, "2026-02-12T01:31:00.000Z", action="hold")
    st = s["stats"]
    assert (st["decisions"], st["buy_trades"], st["sell_trades"], st["holds"], st["total_fees_paid"]) == (2, 0, 0, 1, 0)
    assert s["holdings"] == [] and s["trade_events"] == [] and st["latest_total_balance"] == 100000
    assert s["recent_actions"][0]["action"] == "hold" and s["recent_actions"][1]["action"] == "buy"
    assert s["daily_journal"][0]["decisions"] == 2 and s["daily_journal"][0]["buys"] == 0


def test_fee_falls_back_to_notional_times_rate(book, fresh, make_fill, make_record, settings):
    f = make_fill("buy", qty=100, price=10, ts="2026-02-12T01:30:00.000Z")
    f["fee"] = None
    s = apply_decision(fresh, record=make_record(1, f["ts"]), fill=f, trading_day=DAY1, replay=None, settings=settings, now_iso=f["ts"])
    assert s["stats"]["total_fees_paid"] == 1  # 1000 x 0.001
    assert s["replay"]["trading_day"] == DAY1  # live mode: the real trading day, never "unknown"


def test_apply_decision_does_not_mutate_its_input(book, fresh):
    s = book(fresh, 1, "2026-02-12T01:30:00.000Z", action="buy", qty=200, price=10, fee=1, order_id="a")
    frozen = copy.deepcopy(s)
    book(s, 2, "2026-02-13T01:30:00.000Z", DAY2, action="sell", qty=100, price=11, fee=1, realized=99, order_id="b")
    remark(s, {"600519.SH": 12.0}, now_iso="2026-02-13T02:00:00.000Z", trading_day=DAY2)
    assert s == frozen


def test_same_timestamp_replaces_the_equity_point(book, fresh):
    s = book(fresh, 1, "2026-02-12T01:30:00.000Z", action="hold")
    s = book(s, 2, "2026-02-12T01:30:00.000Z", action="hold")
    assert len(s["equity_curve"]) == 2 and s["equity_curve"][-1]["cycle_number"] == 2


def test_remark_updates_every_holding(book, fresh):
    s = book(fresh, 1, "2026-02-12T01:30:00.000Z", action="buy", qty=100, price=10, fee=0, order_id="a")
    s = book(s, 2, "2026-02-12T01:31:00.000Z", symbol="300750.SZ", action="buy", qty=100, price=20, fee=0, order_id="b")
    s = book(s, 3, "2026-02-12T01:32:00.000Z", symbol="601318.SH", action="buy", qty=100, price=30, fee=0, order_id="c")
    marked = remark(s, {"600519.SH": 11, "300750.SZ": 19, "OTHER": 5}, now_iso="2026-02-12T02:00:00.000Z", trading_day=DAY1)
    marks = {h["symbol"]: (h["mark_price"], h["unrealized_pnl"], h["value"]) for h in marked["holdings"]}
    assert marks == {"600519.SH": (11, 100, 1100), "300750.SZ": (19, -100, 1900), "601318.SH": (30, 0, 3000)}
    st = marked["stats"]
    assert st["latest_total_balance"] == 100000 and st["latest_unrealized_profit"] == 0
    assert sum(h["weight_pct"] for h in marked["holdings"]) == pytest.approx(6.0)
    up = remark(s, {"600519.SH": 20, "300750.SZ": 30, "601318.SH": 40}, now_iso="2026-02-12T02:01:00.000Z", trading_day=DAY1)
    assert up["stats"]["latest_total_balance"] == 103000 and up["stats"]["peak_balance"] == 103000
    assert up["stats"]["return_rate_pct"] == 3 and up["daily_journal"][0]["end_balance"] == 103000


def test_sellable_shares_t_plus_one(book, fresh):
    s = book(fresh, 1, "2026-02-12T01:30:00.000Z", action="buy", qty=100, price=10, order_id="a")
    s = book(s, 2, "2026-02-13T01:30:00.000Z", DAY2, action="buy", qty=200, price=10, order_id="b")
    assert sellable_shares(s, DAY2) == {"600519.SH": 100}
    assert sellable_shares(s, DAY3) == {"600519.SH": 300}
    assert sellable_shares(s, DAY2, t_plus_one=False) == {"600519.SH": 300}
    assert sellable_shares(s, "2026-02-10") == {"600519.SH": 300}  # a looping replay went back in time
    us = {**s, "config": {**s["config"], "market": "US"}}
    assert sellable_shares(us, DAY2) == {"600519.SH": 300}
    data = portfolio_input(s, DAY2)
    assert data["sellable"] == {"600519.SH": 100} and data["total_equity"] == s["stats"]["latest_total_balance"]
    assert data["holdings"] == [{"symbol": "600519.SH", "shares": 300, "avg_cost": 10, "mark_price": 10}]


def test_sellable_for_old_lots_and_uncovered_holdings(fresh):
    old = {
        **fresh,
        "updated_at": "2026-02-12T03:00:00.000Z",
        "holdings": [{"symbol": "600519.SH", "shares": 500, "avg_cost": 10, "mark_price": 10},
                     {"symbol": "300750.SZ", "shares": 100, "avg_cost": 20, "mark_price": 20}],
        # 16:30Z on the 11th is 00:30 on the 12th in Shanghai: bought "today" for DAY1.
        "open_lots": [{"symbol": "600519.SH", "remaining_qty": 300, "entry_qty": 300, "entry_price": 10,
                       "entry_time": "2026-02-11T16:30:00.000Z", "entry_order_id": "100001", "entry_fee_remaining": 0}],
    }
    assert sellable_shares(old, DAY1) == {"600519.SH": 200, "300750.SZ": 100}
    assert sellable_shares(old, DAY2) == {"600519.SH": 500, "300750.SZ": 100}


def test_old_snapshot_without_lots_seeds_them_from_holdings(book, fresh):
    old = {**fresh, "updated_at": "2026-02-10T02:00:00.000Z", "open_lots": [],
           "holdings": [{"symbol": "600519.SH", "shares": 200, "avg_cost": 9, "mark_price": 10}],
           "stats": {**fresh["stats"], "latest_available_balance": 98200, "latest_total_balance": 100200}}
    assert sellable_shares(old, DAY1) == {"600519.SH": 200}
    s = book(old, 1, "2026-02-12T01:30:00.000Z", action="sell", qty=100, price=10, fee=0, realized=100, order_id="x")
    [closed] = s["closed_positions"]
    assert (closed["entry_order_id"], closed["entry_price"], closed["realized_pnl"]) == ("seed", 9, 100)
    assert s["open_lots"][0]["remaining_qty"] == 100 and s["open_lots"][0]["entry_trading_day"] == "2026-02-10"


def test_us_closed_positions_say_sim_us(book, settings):
    us = default_snapshot("us_001", "US Agent", settings, "2026-02-12T14:00:00.000Z", market="US")
    assert (us["config"]["market"], us["config"]["currency"], us["config"]["lot_size"]) == ("US", "USD", 1)
    s = book(us, 1, "2026-02-12T15:00:00.000Z", symbol="AAPL", action="buy", qty=3, price=200, order_id="a")
    s = book(s, 2, "2026-02-12T15:01:00.000Z", symbol="AAPL", action="sell", qty=3, price=201, order_id="b", realized=3)
    assert s["closed_positions"][0]["exchange_id"] == "sim-us"


def test_caps(book, fresh):
    s = fresh
    for i in range(35):
        s = book(s, i + 1, f"2026-01-{(i % 28) + 1:02d}T01:{i:02d}:00.000Z", f"2026-01-{i + 1:02d}" if i < 31 else f"2026-02-{i - 30:02d}", action="hold")
    assert len(s["daily_journal"]) == 30 and len(s["recent_actions"]) == 30
    assert s["daily_journal"][0]["trading_day"] == "2026-02-04"


def test_a_replay_pass_of_the_same_day_is_a_new_session_for_t_plus_one(settings, make_fill, make_record, replay_status, fresh):
    def buy(snapshot, cycle, ts, session, order_id):
        return apply_decision(
            snapshot, record=make_record(cycle, ts), fill=make_fill(ts=ts, action="buy", qty=100, price=10, order_id=order_id),
            trading_day=DAY1, replay={**replay_status, "trading_day": DAY1}, settings=settings, now_iso=ts, session=session,
        )

    s = buy(fresh, 1, "2026-02-12T01:30:00.000Z", DAY1, "a")  # first pass: the session is the day itself
    assert "entry_session" not in s["open_lots"][0]
    assert sellable_shares(s, DAY1) == {"600519.SH": 0}
    # The replay wrapped and plays DAY1 again: the first pass's lot is a show-day old, sellable.
    assert sellable_shares(s, DAY1, session=f"{DAY1}#1") == {"600519.SH": 100}
    s = buy(s, 2, "2026-02-12T02:30:00.000Z", f"{DAY1}#1", "b")
    assert s["open_lots"][1]["entry_session"] == f"{DAY1}#1"
    assert sellable_shares(s, DAY1, session=f"{DAY1}#1") == {"600519.SH": 100}  # this pass's lot stays locked
    assert portfolio_input(s, DAY1, f"{DAY1}#2")["sellable"] == {"600519.SH": 200}
    assert sellable_shares(s, DAY1) == {"600519.SH": 100}  # without a session: the plain day rule
