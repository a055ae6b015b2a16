"""Issue 10's smaller operator defects, through the real CLI against real runtimes: `step` that ran
nothing exits 1, `close-position` really sells (T+1 respected, audited), the restart probe counts
two listeners as unhealthy."""

from __future__ import annotations

import socket

import pytest
from ops_helpers import QUIET_REPLAY, TOKEN, make_root, ops, running


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = make_root(tmp_path_factory.mktemp("defects-root"))
    with running(root, QUIET_REPLAY) as proc:
        yield proc


def test_step_that_ran_nothing_exits_1_and_says_why(server):
    ran = ops("--json", "step", root=server.root, base=server.base)
    assert ran.code == 1, ran
    assert ran.json()["cycle"]["ran"] is False
    assert "step ran no decision cycle: no_running_agents" in ran.err


def test_close_position_sells_through_the_fill_path_respecting_t_plus_1(server):
    for action in ("register", "start"):
        assert server.control(f"/api/agents/demo_momentum/{action}").status_code == 200
    assert server.control("/api/replay/runtime/control", {"action": "pause"}).status_code == 200
    holdings = []
    for _ in range(6):  # the flat-entry starter buy comes within the first cycles
        bought = ops("--json", "step", root=server.root, base=server.base)
        assert bought.code == 0, bought
        with server.client() as c:
            holdings = c.get("/api/positions", params={"trader_id": "demo_momentum"}).json()["data"]
        if holdings:
            break
    assert holdings, bought.json()["cycle"]
    symbol, shares = holdings[0]["symbol"], holdings[0]["quantity"]

    locked = ops("--json", "close-position", "demo_momentum", symbol, root=server.root, base=server.base)
    assert locked.code == 1 and "t_plus_one_locked" in locked.err, locked  # bought today: T+1

    with server.client() as c:
        status = c.get("/api/replay/runtime/status").json()["data"]
    day2 = status["timeline_length"] - 2  # the second trading day of the pack
    assert server.control("/api/replay/runtime/control", {"action": "set_cursor", "cursor_index": day2}).status_code == 200

    dry = ops("--json", "close-position", "demo_momentum", symbol, "--dry-run", root=server.root, base=server.base)
    assert dry.code == 0 and dry.json()["dry_run"] is True and dry.json()["filled_quantity"] == shares, dry
    sold = ops("--json", "close-position", "demo_momentum", symbol, root=server.root, base=server.base)
    assert sold.code == 0, sold
    result = sold.json()
    assert result["executed"] is True and result["filled_quantity"] == shares and result["locked_shares"] == 0
    assert result["fee"] > 0 and result["order_id"].startswith("ord_")
    with server.client() as c:
        assert not [p for p in c.get("/api/positions", params={"trader_id": "demo_momentum"}).json()["data"]
                    if p["symbol"] == symbol]
        history = c.get("/api/positions/history", params={"trader_id": "demo_momentum"}).json()["data"]
        audit = c.get("/api/ops/audit", params={"limit": 5}, headers={"x-control-token": TOKEN}).json()["data"]
    sells = [e for e in history["trade_events"] if e["side"] == "SELL" and e["source"] == "operator.close_position"]
    assert sells and sells[0]["symbol"] == symbol and sells[0]["quantity"] == shares and sells[0]["id"] == result["order_id"]
    assert history["positions"][0]["symbol"] == symbol  # the closed position, FIFO against its lots
    close_lines = [r for r in audit["records"] if r["action"] == "trader.close_position" and r["result"] == "ok"]
    assert close_lines[-1]["close"]["order_id"] == result["order_id"]

    nothing = ops("--json", "close-position", "demo_momentum", symbol, root=server.root, base=server.base)
    assert nothing.code == 1 and "no_position" in nothing.err, nothing


def test_kill_switch_refuses_close_position(server):
    assert server.control("/api/agent/runtime/kill-switch", {"action": "activate"}).status_code == 200
    try:
        refused = ops("--json", "close-position", "demo_momentum", "600519.SH", root=server.root, base=server.base)
        assert refused.code == 1 and "kill_switch_active" in refused.err, refused
    finally:
        assert server.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}).status_code == 200


def test_two_listeners_on_the_port_are_unhealthy(server):
    healthy = ops("--json", "health-restart-probe", root=server.root, base=server.base)
    assert healthy.code == 0 and healthy.json()["listener_count"] == 1, healthy
    second = socket.socket()
    try:
        second.bind(("127.0.0.2", server.port))  # a second server on another loopback address, same port
        second.listen()
        ran = ops("--json", "health-restart-probe", root=server.root, base=server.base)
    finally:
        second.close()
    assert ran.code == 1 and ran.json()["healthy"] is False and ran.json()["listener_count"] == 2, ran
    assert "2 sockets listen" in ran.err
