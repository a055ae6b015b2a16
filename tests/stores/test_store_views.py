"""Read views over snapshots: account, positions, equity history, position history, competition."""

from __future__ import annotations

import pytest

from runtime_api.portfolio import views as pv
from runtime_api.state.memory import default_snapshot
from runtime_api.portfolio.accounting import apply_decision, time_ms

DAY = "2026-02-12"


@pytest.fixture
def traded(settings, make_fill, make_record, replay_status) -> dict:
    """Buy 200 @10, sell 100 @12 (win), buy 100 @20, sell 100 @19 (loss); marks left as traded."""
    s = default_snapshot("t_001", "HS300 Momentum", settings, "2026-02-12T01:00:00.000Z")
    steps = [
        ("buy", "600519.SH", 200, 10, 2, 0, "a"),
        ("sell", "600519.SH", 100, 12, 1.2, 196.8, "b"),
        ("buy", "300750.SZ", 100, 20, 2, 0, "c"),
        ("sell", "300750.SZ", 100, 19, 1.9, -103.9, "d"),
    ]
    for i, (action, symbol, qty, price, fee, realized, oid) in enumerate(steps, start=1):
        ts = f"2026-02-12T0{i}:30:00.000Z"
        s = apply_decision(s, record=make_record(i, ts), fill=make_fill(action, symbol, qty=qty, price=price, fee=fee,
                           realized=realized, order_id=oid, ts=ts), trading_day=DAY, replay=replay_status,
                           settings=settings, now_iso=ts)
    return s


def test_account_view_defaults_and_values(traded):
    default = pv.account_view(None)
    assert default == {"total_equity": 100000, "wallet_balance": 100000, "unrealized_profit": 0, "available_balance": 100000,
                       "total_pnl": 0, "total_pnl_pct": 0, "initial_balance": 100000, "daily_pnl": 0, "position_count": 0,
                       "margin_used": 0, "margin_used_pct": 0}
    account = pv.account_view(traded)
    equity = traded["stats"]["latest_total_balance"]
    assert account["total_equity"] == equity
    assert account["available_balance"] == account["wallet_balance"] == traded["stats"]["latest_available_balance"]
    assert account["total_pnl"] == round(equity - 100000, 2)
    assert account["daily_pnl"] == round(equity - traded["daily_journal"][0]["start_balance"], 2)
    assert account["position_count"] == 1 and account["margin_used"] == 0


def test_positions_view(traded):
    assert pv.positions_view(None) == []
    [position] = pv.positions_view(traded)
    assert position == {"symbol": "600519.SH", "side": "LONG", "entry_price": 10, "mark_price": 12, "quantity": 100,
                        "leverage": 1, "unrealized_pnl": 200, "unrealized_pnl_pct": 20, "liquidation_price": 0,
                        "margin_used": 0}


def test_equity_history_filters_and_falls_back(traded):
    points = pv.equity_history_view(traded)
    assert len(points) == 5 and list(points[0]) == ["timestamp", "total_equity", "pnl", "pnl_pct", "total_pnl_pct", "cycle_number"]
    assert points[0]["cycle_number"] == 1  # Node: a 0 cycle number shows as its 1-based position
    now = time_ms("2026-02-12T04:45:00.000Z")
    assert [p["cycle_number"] for p in pv.equity_history_view(traded, hours=0.5, now_ms=now)] == [4]
    assert len(pv.equity_history_view(traded, hours=1, now_ms=now + 10 * 3_600_000)) == 5  # nothing in window: all
    [synthetic] = pv.equity_history_view({"stats": {"latest_total_balance": 101000, "decisions": 7}, "equity_curve": []})
    assert (synthetic["total_equity"], synthetic["pnl"], synthetic["pnl_pct"], synthetic["cycle_number"]) == (101000, 1000, 1, 7)
    assert pv.equity_history_view(None)[0]["total_equity"] == 100000


def test_positions_history_stats(traded):
    history = pv.positions_history_view(traded, limit=1)
    assert len(history["positions"]) == 1 and history["positions"][0]["symbol"] == "300750.SZ"
    assert len(history["trade_events"]) == 1 and history["trade_events"][0]["id"] == "d"
    stats = history["stats"]
    assert (stats["total_trades"], stats["win_trades"], stats["loss_trades"], stats["win_rate"]) == (2, 1, 1, 50)
    assert stats["profit_factor"] == round(197.8 / 103.9, 2)  # 200 less 1.2 exit and 1.0 pro-rata entry fee
    assert stats["total_pnl"] == 93.9 and stats["avg_win"] == 197.8 and stats["avg_loss"] == -103.9
    assert stats["total_fee"] == 6.1 and stats["max_drawdown_pct"] == round(103.9 / 100197.8 * 100, 2)
    assert [r["symbol"] for r in history["symbol_stats"]] == ["600519.SH", "300750.SZ"]
    assert history["symbol_stats"][0]["avg_hold_mins"] == 60
    assert history["direction_stats"] == [{"side": "LONG", "trade_count": 2, "win_rate": 50, "total_pnl": 93.9, "avg_pnl": 46.95}]
    assert len(pv.positions_history_view(traded, limit=5000)["trade_events"]) == 4


@pytest.mark.parametrize(("pnls", "factor"), [([10, 20], 999), ([], 0), ([10, -5], 2), ([0], 0)])
def test_profit_factor_rule(pnls, factor):
    closed = [{"realized_pnl": p, "exit_time": f"2026-02-12T0{i}:00:00Z"} for i, p in enumerate(pnls)]
    assert pv.history_stats(closed)["profit_factor"] == factor


def test_old_snapshot_seeds_trade_events(settings):
    old = default_snapshot("t_002", "Value Rebound", settings, "2026-02-12T01:00:00.000Z")
    old["open_lots"] = [{"symbol": "600519.SH", "remaining_qty": 100, "entry_qty": 100, "entry_price": 10,
                         "entry_time": "2026-02-12T01:00:00.000Z", "entry_order_id": "100003", "entry_fee_remaining": 0.3}]
    old["closed_positions"] = [{"symbol": "601899.SH", "quantity": 100, "exit_price": 38.6, "exit_time": "2026-02-12T02:00:00.000Z",
                                "exit_order_id": 100004, "realized_pnl": -5.4, "fee": 2.3, "side": "LONG"}]
    old["holdings"] = [{"symbol": "600519.SH", "shares": 100, "avg_cost": 10, "mark_price": 11}]
    events = pv.positions_history_view(old)["trade_events"]
    assert [(e["id"], e["side"], e["source"]) for e in events] == [("100004", "SELL", "seed"), ("100003", "BUY", "seed")]
    assert events[1]["fee"] == 0.3 and events[1]["position_after_mark"] == 11 and events[0]["realized_pnl"] == -5.4
    assert events[0]["trader_id"] == "t_002"


def test_competition_rows(traded):
    rec = {"agent_id": "t_001", "agent_name": "HS300 Momentum", "ai_model": "qwen", "status": "running",
           "avatar_url": "/a.jpg", "avatar_hd_url": None}
    row = pv.competition_row(rec, traded)
    assert row["trader_id"] == "t_001" and row["exchange"] == "sim" and row["is_running"] is True
    assert row["total_equity"] == traded["stats"]["latest_total_balance"] and row["position_count"] == 1
    assert row["avatar_url"] == "/a.jpg" and "avatar_hd_url" not in row
    fallback = pv.competition_row({"trader_id": "t_002", "trader_name": "B", "ai_model": "x", "is_running": False}, None)
    assert (fallback["total_equity"], fallback["total_pnl_pct"], fallback["is_running"]) == (100000, 0, False)
    view = pv.competition_view([row, fallback], {"trading_day": DAY, "day_index": 1})
    assert view["count"] == 2 and view["replay"] == {"trading_day": DAY, "day_index": 1, "day_count": 0,
                                                        "day_bar_index": 0, "day_bar_count": 0}
    assert [r["trader_id"] for r in pv.top_traders([fallback, row], 1)] == (
        ["t_001"] if row["total_pnl_pct"] > 0 else ["t_002"])


def test_sharpe_ratio_uses_sample_deviation_of_trade_returns():
    closed = [{"realized_pnl": p, "exit_time": f"2026-02-12T0{i}:00:00Z"} for i, p in enumerate([100, -50, 200])]
    stats = pv.history_stats(closed)
    assert stats["sharpe_ratio"] == 1.15
    assert stats["max_drawdown_pct"] == round(50 / 100100 * 100, 2)
