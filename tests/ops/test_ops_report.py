"""`onlytrade-ops report` (the real CLI) for a replayed day matches the snapshots' own totals."""

from __future__ import annotations

import csv
import io
import time

import httpx
import orjson
import pytest
from ops_helpers import make_root, ops, running

GAP = "t_gap"  # a pool with no daily history: every decision is a readiness-gate hold
AGENTS = ("demo_momentum", "demo_reversion", GAP)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """A fresh root where three agents traded a stretch of replay, with a kill switch and a pause."""
    root = make_root(tmp_path_factory.mktemp("report-root"))
    manifest = orjson.loads((root / "agents" / "t_001" / "agent.json").read_bytes())
    (root / "agents" / GAP).mkdir()
    (root / "agents" / GAP / "agent.json").write_bytes(orjson.dumps({**manifest, "agent_id": GAP, "stock_pool": ["002131.SZ"]}))
    env = {"REPLAY_SPEED": "600", "AGENT_DECISION_EVERY_BARS": "5", "AGENT_FLAT_ENTRY_ENABLED": "true",
           "AGENT_FLAT_ENTRY_MIN_CYCLES": "1", "AGENT_FLAT_ENTRY_MAX_RSI": "100"}
    with running(root, env) as server:
        for agent in AGENTS:
            for verb in ("register", "start"):
                assert server.control(f"/api/agents/{agent}/{verb}").status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            memory = httpx.get(server.base + "/api/agent/memory", timeout=10).json()["data"]
            stats = {m["trader_id"]: m.get("stats") or {} for m in memory}
            if all((stats.get(a) or {}).get("decisions", 0) >= 12 for a in AGENTS) and \
                    sum((stats.get(a) or {}).get("sell_trades", 0) + (stats.get(a) or {}).get("buy_trades", 0) for a in AGENTS) >= 2:
                break
            time.sleep(0.5)
        server.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "report-drill", "actor": "ops-bob"})
        time.sleep(1.3)  # the watcher looks once a second
        server.control("/api/agent/runtime/kill-switch", {"action": "deactivate", "actor": "ops-bob"})
        server.control("/api/agent/runtime/control", {"action": "pause"})
    # stopped: the report reads only files
    snapshots = {a: orjson.loads((root / "data" / "agent-memory" / f"{a}.json").read_bytes()) for a in AGENTS}
    return root, snapshots


def test_report_matches_the_snapshots_totals(replayed):
    root, snapshots = replayed
    ran = ops("--json", "report", root=root, base="http://127.0.0.1:9")  # no runtime needed
    assert ran.code == 0, ran
    report = ran.json()
    assert set(report["agents"]) == set(AGENTS)
    fills_seen = 0
    for agent, snap in snapshots.items():
        a, stats = report["agents"][agent], snap["stats"]
        assert a["decisions"] == stats["decisions"] == sum(a["by_source"].values()), agent
        assert a["fills"]["buys"] == stats["buy_trades"] and a["fills"]["sells"] == stats["sell_trades"], agent
        assert a["fees"] == pytest.approx(stats["total_fees_paid"], abs=0.011), agent
        realized = sum(float(p.get("realized_pnl") or 0) for p in snap.get("closed_positions") or [])
        assert a["realized_pnl"] == pytest.approx(realized, abs=0.011 * max(1, a["fills"]["sells"])), agent
        assert a["end_equity"] == pytest.approx(stats["latest_total_balance"], abs=0.011), agent
        assert a["unrealized_pnl"] == pytest.approx(stats["latest_unrealized_profit"], abs=0.011), agent
        assert a["max_drawdown"] >= 0 and a["max_drawdown"] <= stats["peak_balance"] - stats["trough_balance"] + 0.011
        fills_seen += a["fills"]["total"]
    assert fills_seen >= 2
    t001 = report["agents"][GAP]
    assert t001["by_source"]["readiness_gate"] == t001["decisions"] and t001["gate"]["forced_holds"] == t001["decisions"]
    assert "daily_frames_insufficient" in t001["gate"]["reasons"] and t001["gate"]["held_s"] > 0
    assert report["totals"]["decisions"] == sum(s["stats"]["decisions"] for s in snapshots.values())
    actions = [r["action"] for r in report["control_actions"]["records"]]
    assert "agent.runtime.kill_switch.activate" in actions and "agent.runtime.control.pause" in actions
    assert report["runtime_held"]["kill_switch_s"] > 0 and report["runtime_held"]["still_on_at_end"] == ["pause"]
    assert report["freshness_incidents"] == []  # replay: no live files
    gate = report["gate_time_s"]  # from gate-events.jsonl, written by the runtime on every change
    assert gate["open"] > 0 and gate["killed"] > 0 and gate["paused"] > 0
    assert all(a["session_gate"]["held_s"] == 0 for a in report["agents"].values())  # replay: no session gate


def test_report_csv_tables_and_a_day_without_logs(replayed):
    root, snapshots = replayed
    day = ops("--json", "report", root=root).json()["day"]
    ran = ops("report", "--day", day, "--csv", root=root)
    assert ran.code == 0, ran
    rows = list(csv.DictReader(io.StringIO(ran.out)))
    assert {r["trader_id"] for r in rows} == set(AGENTS)
    by_id = {r["trader_id"]: r for r in rows}
    assert int(by_id["demo_momentum"]["decisions"]) == snapshots["demo_momentum"]["stats"]["decisions"]
    table = ops("report", "--day", day, root=root)
    assert table.code == 0 and "demo_momentum" in table.out and "control actions" in table.out
    empty = ops("--json", "report", "--day", "2001-01-02", root=root)
    assert empty.code == 0 and empty.json()["agents"] == {} and "no decision logs" in empty.err
    bad = ops("report", "--day", "yesterday", root=root)
    assert bad.code == 2 and "YYYY-MM-DD" in bad.err


def test_session_gate_time_per_agent_and_reason_from_gate_events(tmp_path):
    from runtime_api.settings import Settings
    from runtime_api.state.storage import append_jsonl

    from ops import report

    settings = Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path)}, env_files=False)
    day_start = 1770652800000  # 2026-02-10 00:00 Shanghai
    base = {"mode": "live_file", "kill_switch_sources": [], "paused_reason": None, "running": ["t_001", "t_002"]}
    append_jsonl(tmp_path / "data" / "runtime" / "gate-events.jsonl", [
        {**base, "ts_ms": day_start - 3_600_000, "status": "held", "reason": "market_closed", "active": [],
         "blocked": {"t_001": "market_closed", "t_002": "market_closed"}},  # overnight: counts from midnight
        {**base, "ts_ms": day_start + 34_200_000, "status": "open", "reason": "ok", "active": ["t_001", "t_002"], "blocked": {}},
        {**base, "ts_ms": day_start + 10 * 3_600_000, "status": "open", "reason": "partial:live_file_stale", "active": ["t_002"],
         "blocked": {"t_001": "live_file_stale"}},
        {**base, "ts_ms": day_start + 10 * 3_600_000 + 120_000, "status": "open", "reason": "ok", "active": ["t_001", "t_002"],
         "blocked": {}},
        {**base, "ts_ms": day_start + 15 * 3_600_000, "status": "held", "reason": "market_closed", "active": [],
         "blocked": {"t_001": "market_closed", "t_002": "market_closed"}},
    ])
    data = report.build(settings, "2026-02-10")
    t1, t2 = data["session_gate"]["t_001"], data["session_gate"]["t_002"]
    assert t1["reasons"] == {"market_closed": 9.5 * 3600 + 9 * 3600, "live_file_stale": 120.0}
    assert t2["reasons"] == {"market_closed": 9.5 * 3600 + 9 * 3600}
    assert data["gate_time_s"]["open"] == 5.5 * 3600 and data["gate_time_s"]["held"] == 18.5 * 3600
    stale = [i for i in data["freshness_incidents"] if i["reason"] == "live_file_stale"]
    assert len(stale) == 1 and stale[0]["end_ts_ms"] - stale[0]["start_ts_ms"] == 120_000
