"""The snapshot store (ports agentMemoryStore via apply_decision + save/load, plus W1/W2 fixes)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from runtime_api.errors import ApiError
from runtime_api.state.memory import MemoryStore
from runtime_api.portfolio.accounting import apply_decision

DAY = "2026-02-12"


@pytest.fixture
def store(tmp_path: Path, settings) -> MemoryStore:
    return MemoryStore(tmp_path / "data" / "agent-memory", settings=settings)


@pytest.fixture
def decide(settings, make_fill, make_record, replay_status):
    """ensure -> apply_decision -> save, as the decision loop does; returns the saved snapshot."""

    def run(store: MemoryStore, agent_id: str, cycle: int, ts: str, *, replay: dict | None = None, **fill_kwargs) -> dict:
        snapshot = store.ensure(agent_id, f"Trader {agent_id}")
        nxt = apply_decision(snapshot, record=make_record(cycle, ts), fill=make_fill(ts=ts, **fill_kwargs),
                             trading_day=DAY, replay=replay or replay_status, settings=settings, now_iso=ts)
        store.save(agent_id, nxt)
        return nxt

    return run


def assert_api_error(exc_info, status: int, code: str) -> None:
    assert (exc_info.value.status, exc_info.value.code) == (status, code)


# ---- ported from agentMemoryStore.test.mjs -----------------------------------------------------


def test_records_and_persists_a_snapshot(store, decide, tmp_path, settings):
    decide(store, "t_001", 5, "2026-02-12T00:00:00.000Z", action="buy", qty=10, price=1500.2, fee=0, order_id="o1")
    reloaded = MemoryStore(store.dir, settings=settings).get("t_001")
    assert reloaded["stats"]["latest_total_balance"] == 100000
    assert reloaded["stats"]["latest_available_balance"] == 100000 - 15002
    assert reloaded["stats"]["decisions"] == 1
    assert len(reloaded["holdings"]) == 1
    assert reloaded["replay"]["day_count"] == 3


def test_reset_all_recreates_clean_defaults(store, decide):
    decide(store, "t_001", 2, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=1500, order_id="o1")
    assert store.get("t_001")["stats"]["decisions"] == 1
    snapshot = store.reset_all(["t_001"])["t_001"]
    assert snapshot is store.get("t_001")
    assert (snapshot["stats"]["decisions"], snapshot["stats"]["initial_balance"], snapshot["replay"]["day_index"]) == (0, 100000, 0)
    assert json.loads(store.path_for("t_001").read_text())["stats"]["decisions"] == 0


def test_explicit_fee_counts_and_is_reported(store, decide):
    snapshot = decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=10, fee=1, order_id="o1")
    assert snapshot["stats"]["total_fees_paid"] == 1
    assert snapshot["stats"]["latest_total_balance"] == 99999
    assert snapshot["stats"]["buy_trades"] == 1
    assert snapshot["recent_actions"][0]["fee_paid"] == 1


def test_unexecuted_buy_is_not_counted(store, decide):
    snapshot = decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=10, executed=False)
    assert (snapshot["stats"]["buy_trades"], snapshot["stats"]["sell_trades"]) == (0, 0)


def test_wins_and_losses_only_from_executed_sells(store, decide):
    decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=300, price=10, order_id="o1")
    decide(store, "t_001", 2, "2026-02-12T00:01:00.000Z", action="hold", realized=500)
    decide(store, "t_001", 3, "2026-02-12T00:02:00.000Z", action="sell", qty=100, price=10.5, realized=120, order_id="o2")
    decide(store, "t_001", 4, "2026-02-12T00:03:00.000Z", action="sell", qty=100, price=9.5, realized=-80, order_id="o3")
    snapshot = decide(store, "t_001", 5, "2026-02-12T00:04:00.000Z", action="sell", qty=100, price=9, realized=-90, executed=False)
    assert (snapshot["stats"]["wins"], snapshot["stats"]["losses"]) == (1, 1)


def test_closed_positions_and_equity_curve_from_executed_trades(store, decide, settings):
    decide(store, "t_001", 1, "2026-02-12T09:30:00.000Z", action="buy", qty=100, price=10, fee=1, order_id="100001")
    decide(store, "t_001", 2, "2026-02-12T09:35:00.000Z", action="sell", qty=100, price=10.5, fee=1.05, realized=47.95,
           order_id="100002")
    snapshot = MemoryStore(store.dir, settings=settings).get("t_001")
    assert snapshot["open_lots"] == []
    assert len(snapshot["closed_positions"]) == 1
    closed = snapshot["closed_positions"][0]
    assert (closed["symbol"], closed["entry_order_id"], closed["exit_order_id"]) == ("600519.SH", "100001", "100002")
    assert len(snapshot["equity_curve"]) >= 3
    assert snapshot["equity_curve"][-1]["total_equity"] == 100047.95


def test_reset_positions_only_touches_that_trader(store, decide):
    decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=10, fee=1, order_id="a")
    decide(store, "t_002", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=20, fee=1, order_id="b")
    other_bytes = store.path_for("t_002").read_bytes()
    reset = store.reset("t_001", positions=True)
    assert reset["holdings"] == [] and reset["open_lots"] == [] and reset["closed_positions"] == [] and reset["trade_events"] == []
    assert reset["stats"]["latest_available_balance"] == reset["stats"]["latest_total_balance"] == 99999
    assert reset["stats"]["latest_unrealized_profit"] == 0
    assert reset["stats"]["decisions"] == 1  # stats untouched by a positions-only reset
    assert store.path_for("t_002").read_bytes() == other_bytes
    assert store.get("t_002")["holdings"][0]["shares"] == 100


def test_reset_stats_only_zeroes_counters_and_journal(store, decide):
    decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=10, fee=1, order_id="a")
    decide(store, "t_002", 1, "2026-02-12T00:00:00.000Z", action="hold")
    other_bytes = store.path_for("t_002").read_bytes()
    reset = store.reset("t_001", stats=True)
    st = reset["stats"]
    assert (st["decisions"], st["buy_trades"], st["total_fees_paid"], st["initial_balance"]) == (0, 0, 0, 100000)
    assert st["peak_balance"] == st["trough_balance"] == st["latest_total_balance"] == 99999
    assert reset["daily_journal"] == [] and reset["recent_actions"] == []
    assert len(reset["equity_curve"]) == 1 and reset["equity_curve"][0]["total_equity"] == 99999
    assert reset["holdings"][0]["shares"] == 100  # positions kept
    assert store.path_for("t_002").read_bytes() == other_bytes


# ---- W2: any registered id, lazily loaded ------------------------------------------------------


def test_agent_outside_the_default_four_survives_a_restart(store, decide, settings):
    decide(store, "t_007", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=10, fee=1, order_id="a")
    restarted = MemoryStore(store.dir, settings=settings)
    assert restarted.get("t_007")["holdings"][0]["shares"] == 100
    snapshot = restarted.ensure("t_007", "赵老哥说书局")
    assert snapshot["stats"]["latest_total_balance"] == 99999 and snapshot["trader_name"] == "赵老哥说书局"


def test_ensure_gives_defaults_without_writing(store, settings):
    assert store.get("t_008") is None
    snapshot = store.ensure("t_008", "徐翔说书局", market="US")
    assert not store.path_for("t_008").exists()
    assert (snapshot["config"]["market"], snapshot["config"]["currency"], snapshot["config"]["lot_size"]) == ("US", "USD", 1)
    assert snapshot["stats"]["latest_total_balance"] == 100000 and len(snapshot["equity_curve"]) == 1
    assert snapshot["meta"]["run_id"].startswith("run-") and snapshot["meta"]["run_id"].endswith("-t_008")
    assert store.get("t_008") is snapshot


def test_node_snapshot_loads_unchanged(store, settings):
    node = {
        "schema_version": "agent.memory.v2",
        "meta": {"run_id": "run-20260213015018-t_001", "created_at": "2026-02-13T01:50:18.407Z",
                 "updated_at": "2026-02-17T22:53:51.128Z", "next_position_id": 3},
        "config": {"market": "CN-A", "currency": "CNY", "lot_size": 100, "initial_balance": 100000,
                   "decision_every_bars": 1, "llm_model": "gpt-4o-mini", "commission_rate": 0.0003},
        "trader_id": "t_001", "trader_name": "HS300 Momentum", "updated_at": "2026-02-17T22:53:51.128Z",
        "replay": {"trading_day": "unknown", "day_index": 0, "day_count": 0, "bar_cursor": -1,
                   "is_day_start": False, "is_day_end": False},
        "stats": {"initial_balance": 100000, "latest_total_balance": 99990.11, "latest_available_balance": 88000.5,
                  "latest_unrealized_profit": -3.2, "return_rate_pct": -0.0099, "peak_balance": 100000,
                  "trough_balance": 99985.1, "decisions": 30, "wins": 0, "losses": 2, "holds": 20, "buy_trades": 8,
                  "sell_trades": 2, "total_fees_paid": 6.12},
        "daily_journal": [{"trading_day": "unknown", "day_index": 0, "decisions": 30}],
        "holdings": [{"symbol": "601899.SH", "shares": 100, "avg_cost": 38.64, "mark_price": 38.6,
                      "unrealized_pnl": -4, "value": 3860, "weight_pct": 3.86}],
        "open_lots": [], "closed_positions": [], "trade_events": [],
        "equity_curve": [{"timestamp": "2026-02-13T01:50:18.407Z", "total_equity": 100000, "pnl": 0, "pnl_pct": 0,
                          "total_pnl_pct": 0, "cycle_number": 0}],
        "recent_actions": [], "node_only_key": {"kept": True},
    }
    store.dir.mkdir(parents=True)
    store.path_for("t_001").write_text(json.dumps(node, indent=2))
    assert store.get("t_001") == node
    partial = {"trader_id": "t_003", "stats": {"decisions": 4}}
    store.path_for("t_003").write_text(json.dumps(partial))
    loaded = store.get("t_003")
    assert loaded["stats"]["decisions"] == 4 and loaded["stats"]["latest_total_balance"] == 100000
    assert loaded["holdings"] == [] and loaded["config"]["commission_rate"] == settings.agent_commission_rate


# ---- W1: a corrupt snapshot is quarantined, never silently reset -------------------------------


@pytest.mark.parametrize("content", [b'{"schema_version": "agent.memory.v2", "stats": {', b"[1, 2]", b'{"trader_id": "t_002"}'])
def test_corrupt_snapshot_is_quarantined_and_agent_errored(store, content):
    store.dir.mkdir(parents=True)
    store.path_for("t_001").write_bytes(content)
    assert store.get("t_001") is None
    [moved] = list(store.dir.glob("t_001.json.corrupt-*"))
    assert moved.read_bytes() == content
    assert not store.path_for("t_001").exists()
    assert "t_001" in store.errored() and moved.name in store.errored()["t_001"]
    assert store.status("t_001")["errored"] is True
    with pytest.raises(ApiError) as exc_info:
        store.ensure("t_001", "HS300 Momentum")
    assert_api_error(exc_info, 409, "agent_memory_corrupt")
    with pytest.raises(ApiError) as exc_info:
        store.save("t_001", {"trader_id": "t_001"})
    assert_api_error(exc_info, 409, "agent_memory_corrupt")
    with pytest.raises(ApiError) as exc_info:
        store.reset("t_001", positions=True)
    assert_api_error(exc_info, 409, "agent_memory_corrupt")
    assert not store.path_for("t_001").exists()

    fresh = store.reset("t_001", memory=True, trader_name="HS300 Momentum")
    assert store.errored() == {} and store.path_for("t_001").exists()
    assert store.ensure("t_001", "HS300 Momentum") == fresh
    assert moved.exists()  # the quarantined copy stays for the operator


# ---- resets: dry runs, backups, generations ----------------------------------------------------


def test_reset_requires_a_scope_and_works_for_any_id(store):
    with pytest.raises(ApiError) as exc_info:
        store.reset("t_009")
    assert_api_error(exc_info, 400, "no_reset_scope_selected")
    with pytest.raises(ApiError) as exc_info:
        store.reset("../x", memory=True)
    assert_api_error(exc_info, 400, "invalid_agent_id")
    snapshot = store.reset("t_009", positions=True, trader_name="Nine")
    assert snapshot["trader_name"] == "Nine" and store.path_for("t_009").exists()


def test_plan_reset_counts_without_changing_anything(store, decide):
    decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=10, fee=1, order_id="a")
    decide(store, "t_001", 2, "2026-02-12T00:01:00.000Z", action="buy", qty=100, price=11, fee=1, order_id="b")
    decide(store, "t_001", 3, "2026-02-12T00:02:00.000Z", action="sell", qty=150, price=12, fee=1, realized=200, order_id="c")
    before = store.path_for("t_001").read_bytes()
    version = store.version
    plan = store.plan_reset("t_001", positions=True)
    assert plan["file"] == "t_001.json" and plan["exists"] is True and plan["errored"] is None
    assert plan["clears"] == {"holdings": 1, "open_lots": 1, "closed_positions": 2, "trade_events": 3,
                              "daily_journal": 0, "recent_actions": 0, "equity_points": 0, "decisions": 0}
    full = store.plan_reset("t_001", memory=True)["clears"]
    assert (full["daily_journal"], full["recent_actions"], full["equity_points"], full["decisions"]) == (1, 3, 4, 3)
    assert store.path_for("t_001").read_bytes() == before and store.version == version
    assert store.plan_reset("t_404", stats=True)["exists"] is False


def test_backup_copies_current_files(store, decide, tmp_path):
    decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="hold")
    decide(store, "t_002", 1, "2026-02-12T00:00:00.000Z", action="hold")
    folder = store.backup(["t_001", "t_002", "t_404"], tmp_path / "backups")
    assert folder.parent == tmp_path / "backups"
    assert sorted(p.name for p in folder.iterdir()) == ["t_001.json", "t_002.json"]
    assert (folder / "t_001.json").read_bytes() == store.path_for("t_001").read_bytes()
    assert store.backup(["t_001"], tmp_path / "backups") != folder


def test_stale_generation_cannot_overwrite_a_reset(store, decide):
    snapshot = decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=10, order_id="a")
    generation = store.generation("t_001")
    store.reset("t_001", memory=True)
    with pytest.raises(ApiError) as exc_info:
        store.save("t_001", snapshot, generation=generation)
    assert_api_error(exc_info, 409, "memory_generation_changed")
    assert store.get("t_001")["stats"]["decisions"] == 0


def test_version_counts_changes(store, decide):
    v0 = store.version
    decide(store, "t_001", 1, "2026-02-12T00:00:00.000Z", action="hold")
    assert store.version > v0
    v1 = store.version
    store.get("t_001")
    assert store.version == v1


@pytest.mark.parametrize("scope", ["memory", "positions", "stats"])
def test_every_reset_scope_leaves_other_agents_byte_identical(store, decide, scope):
    for agent_id in ("t_001", "t_002", "t_007"):
        decide(store, agent_id, 1, "2026-02-12T00:00:00.000Z", action="buy", qty=100, price=10, fee=1, order_id=agent_id)
    others = {a: store.path_for(a).read_bytes() for a in ("t_002", "t_007")}
    store.reset("t_001", **{scope: True})
    assert {a: store.path_for(a).read_bytes() for a in others} == others


def test_concurrent_saves_from_threads(store, decide):
    errors: list[BaseException] = []

    def work(agent_id: str) -> None:
        try:
            for cycle in range(1, 6):
                decide(store, agent_id, cycle, f"2026-02-12T00:0{cycle}:00.000Z", action="hold")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t_{i:03d}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(store.cached()) == [f"t_{i:03d}" for i in range(8)]
    assert all(json.loads(store.path_for(a).read_text())["stats"]["decisions"] == 5 for a in store.cached())


def test_a_missing_snapshot_is_looked_for_at_most_once_a_second(store, monkeypatch):
    """Viewers poll traders that have not traded yet: no file read per poll, and a file that
    appears is seen within ABSENT_RECHECK_S; a save is seen at once."""
    import runtime_api.state.memory as memory

    now = [1000.0]
    monkeypatch.setattr(memory.time, "monotonic", lambda: now[0])
    reads = []
    real_read = memory.storage.read_json
    monkeypatch.setattr(memory.storage, "read_json", lambda path: reads.append(path) or real_read(path))
    assert store.get("t_001") is None
    for _ in range(50):
        assert store.get("t_001") is None
    assert len(reads) == 1
    store.dir.mkdir(parents=True, exist_ok=True)
    store.path_for("t_001").write_text(json.dumps({"trader_id": "t_001", "trader_name": "Written aside"}))
    assert store.get("t_001") is None  # within the recheck window
    now[0] += memory.ABSENT_RECHECK_S
    assert store.get("t_001")["trader_name"] == "Written aside"
    assert store.get("t_002") is None
    saved = store.ensure("t_002", "Fresh")
    store.save("t_002", saved)
    assert store.get("t_002") is not None  # the cache answers before the absence mark
