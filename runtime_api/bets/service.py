"""The bet board of one app: market payloads, placing bets, credits, and settlement on a timer.

Differences from Node, all deliberate (W-B1..W-B4): a session starts with BETS_STARTING_POINTS,
a stake is debited when placed (a replaced bet is refunded first) and must fit the balance; the
returns are frozen once at the cutoff and the day is settled once after the close from those frozen
returns, among all lobby traders of the market, by a timer (no request needed, GETs never write);
a replayed day settles when the replay clock reaches its close or leaves the day, and a replay
that wraps around starts new day states (`#r<n>`) instead of betting on settled days.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import anyio

from ..errors import ApiError
from ..numbers import finite
from ..market.calendar import market_of_exchange
from ..chat.limits import SlidingWindow
from . import odds as odds_mod
from .clock import market_clock
from .ledger import Ledger

log = logging.getLogger("onlytrade.bets")

MARKET_SCHEMA = "bets.market.v1"
CREDITS_SCHEMA = "bets.credits.v1"
SETTLEMENT_SCHEMA = "bets.settlement.v1"
DEFAULT_STAKE = 10
MAX_STAKE = 100000
TICK_S = 1.0


def wall_ms() -> int:
    return int(time.time() * 1000)


class BetsService:
    def __init__(self, ctx, ledger: Ledger, sessions):
        self.ctx = ctx
        self.settings = ctx.settings
        self.ledger = ledger
        self.sessions = sessions
        self.per_address = SlidingWindow(ctx.settings.bets_place_rate_limit_per_min)
        self.settlements = 0
        self._last_clock: int | None = None
        self._frozen_memory: dict[str, dict] = {}  # freezes of days nobody bet on (never written)

    # ---- the clock ----------------------------------------------------------------------------

    @property
    def replay(self) -> bool:
        return not self.settings.live_mode and self.ctx.svc.replay is not None

    def now_ms(self) -> int:
        return self.ctx.runtime.clock_ms() if self.replay else wall_ms()

    def clock(self, market: str) -> dict:
        clock = market_clock(market, self.now_ms(), calendar=not self.replay)
        rnd = int(self.ledger.state.get("replay_round") or 0) if self.replay else 0
        clock["state_id"] = f"{market}::{clock['day_key']}" + (f"#r{rnd}" if rnd else "")
        return clock

    # ---- candidates and returns -------------------------------------------------------------------

    def candidates(self, market: str) -> list[dict]:
        registry = self.ctx.svc.registry
        out = []
        for agent_id in registry.lobby_ids():
            rec = registry.get(agent_id)
            if rec and rec.get("available", True) and market_of_exchange(str(rec.get("exchange_id") or "")) == market:
                out.append({"trader_id": agent_id, "trader_name": rec.get("agent_name"), "market": market,
                            "is_running": rec.get("status") == "running"})
        return out

    def daily_return(self, agent_id: str, day_key: str) -> float:
        """Today's P&L over the initial balance, from the journal row of that trading day (W-B3)."""
        snap = self.ctx.svc.memory.get(agent_id) or {}
        initial = float(((snap.get("stats") or {}).get("initial_balance")) or 100000)
        for row in snap.get("daily_journal") or []:
            if isinstance(row, dict) and row.get("trading_day") == day_key:
                start, end = row.get("start_balance"), row.get("end_balance")
                if isinstance(start, (int, float)) and isinstance(end, (int, float)) and initial > 0:
                    value = (end - start) / initial * 100
                    return round(value, 4) if math.isfinite(value) else 0.0
        return 0.0

    def live_returns(self, candidates: list[dict], day_key: str) -> dict[str, float]:
        return {c["trader_id"]: self.daily_return(c["trader_id"], day_key) for c in candidates}

    # ---- reads ------------------------------------------------------------------------------------

    def market_of_request(self, market: str, trader_id: str) -> str:
        if trader_id:
            rec = self.ctx.svc.registry.get(trader_id)
            if not rec or rec.get("available") is False or not rec.get("show_in_lobby", True):
                raise ApiError(404, "trader_not_available_for_bet", f"{trader_id!r} is not a lobby trader")
            return market_of_exchange(str(rec.get("exchange_id") or ""))
        return "US" if str(market or "").strip().upper() == "US" else "CN-A"

    def payload(self, market: str, public_id: str | None) -> dict:
        clock = self.clock(market)
        day = self.ledger.state["days"].get(clock["state_id"]) or {}
        candidates = self.candidates(market)
        frozen = day.get("freeze_returns_by_trader") or (self._frozen_memory.get(clock["state_id"]) or {}).get("returns")
        returns = frozen if frozen is not None else self.live_returns(candidates, clock["day_key"])
        edge = self.settings.bets_house_edge
        rows = odds_mod.entries(candidates, returns, day.get("pools") or {}, edge)
        by_id = {r["trader_id"]: r for r in rows}
        settlement = day.get("settlement")
        my_bet = None
        bet = (day.get("user_bets") or {}).get(public_id) if public_id else None
        if bet:
            entry = by_id.get(bet["trader_id"])
            payout = ((settlement or {}).get("payouts_by_session") or {}).get(public_id) or {}
            my_bet = {**bet,
                      "estimated_odds": entry["odds"] if entry else None,
                      "estimated_payout": round(entry["odds"] * bet["stake_amount"], 2) if entry else None,
                      "settlement_status": day.get("settlement_status") or "pending",
                      "settled_is_winner": payout.get("is_winner") if payout else None,
                      "settled_credit_points": payout.get("credit_points_awarded") if payout else None}
        pools = day.get("pools") or {}
        return {
            "schema_version": MARKET_SCHEMA,
            "market": market,
            "time_zone": clock["time_zone"],
            "mode": self.settings.runtime_data_mode,
            "ts_ms": wall_ms(),
            "day_key": clock["day_key"],
            "betting_open": clock["betting_open"],
            "odds_update_active": clock["betting_open"],
            "cutoff_minute": clock["cutoff_minute"],
            "close_minute": clock["close_minute"],
            "house_edge": edge,
            "totals": {"stake_amount": round(sum(float(p.get("amount") or 0) for p in pools.values()), 2),
                       "ticket_count": sum(int(p.get("tickets") or 0) for p in pools.values())},
            "entries": rows,
            "my_bet": my_bet,
            "my_credits": self._credits_row(public_id, short=True) if public_id else None,
            "settlement": {k: settlement.get(k) for k in ("schema_version", "settled_ts_ms", "winning_trader_ids",
                                                          "winning_return_pct")} if settlement else None,
            "freeze_ts_ms": day.get("freeze_ts_ms") or (self._frozen_memory.get(clock["state_id"]) or {}).get("ts_ms"),
        }

    def balance(self, public_id: str | None) -> int:
        row = self.ledger.state["credits_by_session"].get(public_id) if public_id else None
        return int(row["credit_points"]) if row else self.settings.bets_starting_points

    def _credits_row(self, public_id: str, *, short: bool = False) -> dict:
        """A session's points; a verified session that never bet has the starting balance."""
        row = self.ledger.state["credits_by_session"].get(public_id) or {
            "user_session_id": public_id, "user_nickname": self.sessions.nickname(public_id),
            "credit_points": self.settings.bets_starting_points, "settled_bets": 0, "win_count": 0, "updated_ts_ms": None}
        if short:
            return {k: row.get(k) for k in ("credit_points", "settled_bets", "win_count")}
        return {k: row.get(k) for k in ("user_session_id", "user_nickname", "credit_points", "settled_bets",
                                        "win_count", "updated_ts_ms")}

    def credits(self, public_id: str | None, limit: int) -> dict:
        rows = [self._credits_row(sid) for sid in self.ledger.state["credits_by_session"]]
        rows.sort(key=lambda r: (-(r["credit_points"] or 0), -(r["win_count"] or 0), -(r["updated_ts_ms"] or 0)))
        return {"schema_version": CREDITS_SCHEMA, "count": len(rows), "leaderboard": rows[:limit],
                "my_credits": self._credits_row(public_id) if public_id else None}

    # ---- placing a bet -------------------------------------------------------------------------------

    async def place(self, public_id: str, nickname: str, trader_id: str, raw_stake, ip: str) -> dict:
        market = self.market_of_request("", trader_id)
        if trader_id not in {c["trader_id"] for c in self.candidates(market)}:
            raise ApiError(404, "trader_not_available_for_bet", f"{trader_id!r} is not a lobby trader")
        clock = self.clock(market)
        if not clock["betting_open"]:
            raise ApiError(409, "betting_closed_before_market_close_30m",
                           "bets close 30 minutes before the market close")
        stake = _stake(raw_stake)
        if not self.per_address.allowed(ip):
            raise ApiError(429, "rate_limited", f"too many bets; retry in {self.per_address.retry_after_s(ip)} s")
        self.per_address.hit(ip)
        now = wall_ms()

        def mutate(state: dict) -> None:
            day = state["days"].setdefault(clock["state_id"], _new_day(clock, market, now))
            credits = state["credits_by_session"].setdefault(public_id, {
                "user_session_id": public_id, "user_nickname": nickname, "credit_points": self.settings.bets_starting_points,
                "settled_bets": 0, "win_count": 0, "last_award_ts_ms": None, "updated_ts_ms": now})
            previous = day["user_bets"].get(public_id)
            available = int(credits["credit_points"]) + (int(previous["stake_amount"]) if previous else 0)
            if stake > available:
                raise ApiError(400, "insufficient_credit_points",
                               f"stake {stake} exceeds your {available} points")
            if previous:
                pool = day["pools"].setdefault(previous["trader_id"], {"amount": 0, "tickets": 0})
                pool["amount"] = round(max(0.0, pool["amount"] - previous["stake_amount"]), 2)
                pool["tickets"] = max(0, pool["tickets"] - 1)
            pool = day["pools"].setdefault(trader_id, {"amount": 0, "tickets": 0})
            pool["amount"] = round(pool["amount"] + stake, 2)
            pool["tickets"] += 1
            day["user_bets"][public_id] = {"user_session_id": public_id, "user_nickname": nickname, "trader_id": trader_id,
                                           "stake_amount": stake, "placed_ts_ms": now, "market": market,
                                           "day_key": clock["day_key"]}
            day["updated_ts_ms"] = now
            credits.update(credit_points=available - stake, user_nickname=nickname, updated_ts_ms=now)

        await anyio.to_thread.run_sync(self.ledger.change, mutate)
        return await anyio.to_thread.run_sync(self.payload, market, public_id)

    # ---- freeze and settlement (the timer) -------------------------------------------------------------

    async def run(self, tick_s: float = TICK_S) -> None:
        while True:
            await asyncio.sleep(tick_s)
            try:
                await self.tick()
            except Exception:
                log.exception("bets settlement tick failed")

    async def tick(self) -> list[str]:
        """Freeze today's returns at the cutoff; settle every pending day whose close has passed. Returns
        the state ids settled."""
        now = self.now_ms()
        if self.replay and self._last_clock is not None and now < self._last_clock:  # the replay wrapped around
            if self.ledger.state["days"]:
                await anyio.to_thread.run_sync(self.ledger.change, _next_round)
            else:
                _next_round(self.ledger.state)
            self._frozen_memory.clear()
        self._last_clock = now
        settled = []
        for market in ("CN-A", "US"):
            clock = self.clock(market)
            if not self.candidates(market) and not any(k.startswith(market + "::") for k in self.ledger.state["days"]):
                continue
            if clock["after_cutoff"]:
                await self._freeze(clock, market)
            for state_id, day in list(self.ledger.state["days"].items()):
                if day.get("market") != market or day.get("settlement_status") == "settled":
                    continue
                if state_id != clock["state_id"] or clock["after_close"]:
                    await self._settle(state_id, day, market)
                    settled.append(state_id)
        return settled

    async def _freeze(self, clock: dict, market: str) -> None:
        state_id = clock["state_id"]
        day = self.ledger.state["days"].get(state_id)
        if (day and day.get("freeze_returns_by_trader") is not None) or (not day and state_id in self._frozen_memory):
            return
        returns = await anyio.to_thread.run_sync(self.live_returns, self.candidates(market), clock["day_key"])
        now = wall_ms()
        if not day:  # nobody bet: show the frozen board, write nothing
            self._frozen_memory = {state_id: {"returns": returns, "ts_ms": now},
                                   **{k: v for k, v in self._frozen_memory.items() if not k.startswith(market + "::")}}
            return

        def mutate(state: dict) -> None:
            d = state["days"][state_id]
            if d.get("freeze_returns_by_trader") is None:
                d.update(freeze_returns_by_trader=returns, freeze_ts_ms=now, updated_ts_ms=now)

        await anyio.to_thread.run_sync(self.ledger.change, mutate)

    async def _settle(self, state_id: str, day: dict, market: str) -> None:
        candidates = self.candidates(market)
        returns = day.get("freeze_returns_by_trader")
        if returns is None:  # the cutoff was never observed (e.g. a replay jump): freeze now
            returns = await anyio.to_thread.run_sync(self.live_returns, candidates, day["day_key"])
        edge = self.settings.bets_house_edge
        now = wall_ms()

        def mutate(state: dict) -> None:
            d = state["days"][state_id]
            if d.get("settlement_status") == "settled":
                return
            board = odds_mod.entries(candidates, returns, d.get("pools") or {}, edge)
            best = max((r["daily_return_pct"] for r in board), default=None)
            winners = [r["trader_id"] for r in board if best is not None and r["daily_return_pct"] == best]
            odds_of = {r["trader_id"]: r["odds"] for r in board}
            payouts = {}
            for sid, bet in (d.get("user_bets") or {}).items():
                win = bet["trader_id"] in winners
                award = odds_mod.payout(bet["stake_amount"], odds_of.get(bet["trader_id"], 1.0)) if win else 0
                payouts[sid] = {"user_session_id": sid, "user_nickname": bet.get("user_nickname"), "trader_id": bet["trader_id"],
                                "stake_amount": bet["stake_amount"], "settled_odds": odds_of.get(bet["trader_id"]),
                                "is_winner": win, "credit_points_awarded": award, "settled_ts_ms": now}
                credits = state["credits_by_session"].get(sid)
                if credits is not None:
                    credits["settled_bets"] = int(credits.get("settled_bets") or 0) + 1
                    credits["updated_ts_ms"] = now
                    if win:
                        credits["credit_points"] = int(credits["credit_points"]) + award
                        credits["win_count"] = int(credits.get("win_count") or 0) + 1
                        credits["last_award_ts_ms"] = now
            d.update(freeze_returns_by_trader=returns, freeze_ts_ms=d.get("freeze_ts_ms") or now,
                     settlement_status="settled", settled_ts_ms=now, updated_ts_ms=now,
                     settlement={"schema_version": SETTLEMENT_SCHEMA, "settled_ts_ms": now, "winning_trader_ids": winners,
                                 "winning_return_pct": best, "payouts_by_session": payouts})

        await anyio.to_thread.run_sync(self.ledger.change, mutate)
        self.settlements += 1
        log.info("bets %s settled: winners %s", state_id, ",".join(self.ledger.state["days"][state_id]["settlement"]["winning_trader_ids"]))


def _new_day(clock: dict, market: str, now: int) -> dict:
    return {"state_id": clock["state_id"], "market": market, "day_key": clock["day_key"], "created_ts_ms": now,
            "updated_ts_ms": now, "pools": {}, "user_bets": {}, "freeze_returns_by_trader": None, "freeze_ts_ms": None,
            "settlement_status": "pending", "settled_ts_ms": None, "settlement": None}


def _next_round(state: dict) -> None:
    state["replay_round"] = int(state.get("replay_round") or 0) + 1


def _stake(raw) -> int:
    """Node's rule: missing or non-numeric → 10; else rounded and clamped to 1..100000."""
    value = finite(raw)
    return DEFAULT_STAKE if value is None else int(min(MAX_STAKE, max(1, round(value))))
