"""The session gate with injected clocks: calendar, sessions, freshness (W13), per-market agents."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from runtime_api.market.session_gate import evaluate, session_gate_level

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
FRESH = {"stale": False, "last_error": None, "frame_count": 100, "symbols_1m": ["600519.SH"]}
STALE = {**FRESH, "stale": True}
AGENTS = {"t_001": {"exchange_id": "sim-cn"}, "us_001": {"exchange_id": "sim-us"}}


def ms(tz, *args) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)


def gate(now_ms, *, cn=FRESH, us=FRESH, require_fresh=True, enabled=True):
    return evaluate(enabled=enabled, require_fresh=require_fresh, check_ms=30000, now_ms=now_ms,
                    running=AGENTS, live_status={"CN-A": cn, "US": us})


@pytest.mark.parametrize(
    "when, active, blocked",
    [
        (ms(SH, 2026, 3, 10, 10, 0), ["t_001"], {"us_001": "after_close"}),
        (ms(SH, 2026, 3, 10, 11, 30), [], {"t_001": "lunch_break", "us_001": "after_close"}),
        (ms(SH, 2026, 3, 10, 14, 58), [], {"t_001": "close_auction", "us_001": "pre_open"}),  # 01:58 in New York
        (ms(SH, 2026, 2, 17, 10, 0), [], {"t_001": "holiday", "us_001": "holiday"}),  # Spring Festival; Presidents' Day
        (ms(NY, 2026, 3, 10, 10, 0), ["us_001"], {"t_001": "outside_cn_a_session"}),
        (ms(NY, 2026, 7, 3, 10, 0), [], {"t_001": "outside_cn_a_session", "us_001": "holiday"}),  # July 4th observed
    ],
)
def test_sessions_and_holidays(when, active, blocked):
    g = gate(when)
    assert g["active_trader_ids"] == active
    assert g["blocked"] == blocked


def test_fresh_data_requirement_is_real_and_optional():
    open_cn = ms(SH, 2026, 3, 10, 10, 0)
    assert gate(open_cn, cn=STALE)["blocked"]["t_001"] == "live_file_stale"
    assert gate(open_cn, cn={**FRESH, "last_error": "invalid_json"})["blocked"]["t_001"] == "live_file_error"
    assert gate(open_cn, cn=None)["blocked"]["t_001"] == "live_file_stale"
    assert gate(open_cn, cn=STALE, require_fresh=False)["active_trader_ids"] == ["t_001"]  # W13


def test_disabled_gate_lets_every_running_agent_decide():
    assert gate(ms(SH, 2026, 2, 17, 3, 0), enabled=False)["active_trader_ids"] == ["t_001", "us_001"]


def test_per_decision_session_gate_level():
    open_cn, closed = ms(SH, 2026, 3, 10, 10, 0), ms(SH, 2026, 3, 10, 12, 0)
    assert session_gate_level(live_mode=False, market="CN-A", now_ms=closed, status=None)["level"] == "OK"
    assert session_gate_level(live_mode=True, market="CN-A", now_ms=open_cn, status=FRESH)["level"] == "OK"
    stale = session_gate_level(live_mode=True, market="CN-A", now_ms=closed, status=STALE)
    assert stale["level"] == "WARN" and stale["reasons"] == ["live_file_stale", "market_closed"]
    assert session_gate_level(live_mode=True, market="CN-A", now_ms=open_cn, status=None)["level"] == "ERROR"
