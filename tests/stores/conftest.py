"""Store test helpers: settings, fill and record builders, and the Node fixture files."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime_api.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def settings() -> Settings:
    return Settings(agent_commission_rate=0.001)


def fill(action: str = "hold", symbol: str = "600519.SH", *, qty: int = 0, price: float = 10.0, fee: float | None = None,
         executed: bool | None = None, realized: float = 0.0, order_id: str | None = None, ts: str = "2026-02-12T01:30:00.000Z",
         source: str = "rule.heuristic") -> dict:
    """A fill dict exactly as the order simulation hands it to `apply_decision`."""
    traded = action in ("buy", "sell") and qty > 0
    notional = round(qty * price, 2)
    return {
        "action": action,
        "symbol": symbol,
        "executed": traded if executed is None else executed,
        "requested_quantity": qty,
        "filled_quantity": qty if traded else 0,
        "price": price,
        "notional": notional if traded else 0,
        "commission": fee or 0,
        "stamp_duty": 0,
        "fee": fee if fee is not None else 0,
        "realized_pnl": realized,
        "order_id": order_id,
        "ts": ts,
        "source": source,
        "error": None,
    }


def record(cycle: int, ts: str, source: str = "rule.heuristic") -> dict:
    return {"timestamp": ts, "cycle_number": cycle, "decision_source": source,
            "runtime_meta": {"decision_every_bars": 10, "llm_model": "gpt-4o-mini"}}


REPLAY = {"trading_day": "2026-02-12", "day_index": 1, "day_count": 3, "cursor_index": 20,
          "is_day_start": False, "is_day_end": False}


@pytest.fixture
def make_fill():
    return fill


@pytest.fixture
def make_record():
    return record


@pytest.fixture
def replay_status() -> dict:
    return dict(REPLAY)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
