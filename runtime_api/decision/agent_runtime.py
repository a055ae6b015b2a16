"""The decision loop: schedules cycles and turns a bar into a decision into a snapshot.

Each agent decides in its own task under its own lock, so one slow LLM never delays the others.
The lock is held only to read the snapshot and to write the result; between the two the cycle
builds its context and asks the LLM. A reset bumps the agent's generation under the same lock,
so a cycle that was in flight discards its result instead of writing the pre-reset portfolio back.
All disk I/O and CPU-heavy work (feature building, snapshot accounting, JSON encoding) runs in
worker threads; the event loop only awaits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .. import clock
from ..market import session_gate as market_gate
from ..portfolio import accounting as portfolio
from ..state import replay_position
from . import LlmBreaker, LlmDecider, run_decision
from .features import bar_features
from ..state.journal import audit_record
from ..market.file_watch import LiveFileWatcher
from ..recording.llm_log import LlmExchangeLog
from ..market import sanity
from ..market.supplemental import news_titles, normalize_breadth, overview_brief
from .round_log import outcome_label, round_line
from ..services import Services
from ..market.calendar import market_of_exchange, trading_day_of
from ..state.write_health import WriteHealth
from ..state.storage import CorruptFileError, read_json, write_json_atomic

log = logging.getLogger("onlytrade.runtime")

DecisionListener = Callable[[str, dict, dict], Awaitable[None] | None]
HISTORY_LIMIT = 120
INTRADAY_BARS = 180
DAILY_BARS = 180
MANIFEST_RESCAN_S = 30.0
PERSIST_RETRY_S = 5.0


def iso_now() -> str:
    return clock.now_iso()


def wall_ms() -> int:
    """A clock reading (runtime_api.clock); the schedulers below time themselves on time.monotonic()."""
    return clock.now_ms()


def real_ms() -> int:
    return int(time.time() * 1000)


class AgentRuntime:
    def __init__(self, svc: Services):
        self.svc = svc
        s = svc.settings
        self.settings = s
        self.pause_file = s.resolve(s.runtime_state_dir) / "runtime-pause.json"
        self.paused_reason: str | None = self._load_pause()
        self.pause_persisted = True
        self.pause_write_health = WriteHealth("pause")
        self.replay_position_write_health = WriteHealth("replay_position")
        self.cycle_ms = s.agent_runtime_cycle_ms
        self.decision_every_bars = s.agent_decision_every_bars
        self.metrics = {"totalCycles": 0, "successfulCycles": 0, "failedCycles": 0}
        self.last_cycle_started_ms: int | None = None
        self.last_cycle_completed_ms: int | None = None
        self.idle_at_ms = wall_ms()  # the last scheduler tick at which no cycle was due (heartbeat())
        self.history: dict[str, deque] = {}
        self.in_flight: set[str] = set()
        self._none_in_flight = asyncio.Event()  # set exactly when in_flight is empty (decide())
        self._none_in_flight.set()
        self.generation: Counter[str] = Counter()
        self.discarded_cycles = 0
        self.sink_errors: Counter[str] = Counter()
        self.agent_errors: dict[str, str] = {}
        # agent id -> {symbol: reason} of the pool symbols left out of its last cycle's candidates
        self.exclusions: dict[str, dict[str, str]] = {}
        self.llm_failures: Counter[str] = Counter()
        self.llm_calls = Counter()
        self.breakers: dict[str, LlmBreaker] = {}
        self.listeners: list[DecisionListener] = []
        self.version = 0
        self.gate: dict[str, Any] = {"enabled": False}
        self._locks: dict[str, asyncio.Lock] = {}
        self._bars_since_cycle = 0
        self._tasks: set[asyncio.Task] = set()
        self._outcomes: dict[str, str] = {}  # agent -> fill / hold reason, for the round's log line
        self._stopping = False
        self._refresh_lock = asyncio.Lock()
        self.watcher: LiveFileWatcher | None = None
        self.llm_exchanges = LlmExchangeLog(s.resolve(s.llm_recordings_dir), retention_days=s.llm_recordings_retention_days)
        recorded = s.replay_llm == "recorded" and s.agent_llm_enabled
        # REPLAY_LLM=recorded answers from the recordings: no key and no provider needed
        self.llm = LlmDecider(s, exchanges=self.llm_exchanges, recorded=recorded) if (s.llm_configured or recorded) else None
        # One worker thread for all cycle work: several threads of Python would contend for the
        # GIL and starve the event loop (measured: 25-34 stalls >20 ms per 30 s with the default
        # limiter, 0-2 with one thread, same cycle throughput).
        self.worker = anyio.CapacityLimiter(1)
        self.replay_position_file = replay_position.path_in(s.resolve(s.runtime_state_dir))
        if self.replay_active:
            replay_position.restore(self.replay_position_file, svc.replay)

    @property
    def replay_active(self) -> bool:
        return self.svc.replay is not None and not self.settings.live_mode

    async def save_replay_position(self) -> bool:
        """Persist the replay position (see replay_position); False, logged, when the write fails."""
        if not self.replay_active:
            return True
        try:
            await anyio.to_thread.run_sync(replay_position.save, self.replay_position_file, self.svc.replay, limiter=self.worker)
        except OSError as exc:
            self.replay_position_write_health.failed(exc, self.replay_position_file)  # readiness fails, cycles hold
            return False
        self.replay_position_write_health.ok()
        return True

    # ---- state -------------------------------------------------------------------------

    def bump(self) -> None:
        self.version += 1

    def lock_for(self, agent_id: str) -> asyncio.Lock:
        return self._locks.setdefault(agent_id, asyncio.Lock())

    def breaker_for(self, agent_id: str) -> LlmBreaker:
        if agent_id not in self.breakers:
            s = self.settings
            self.breakers[agent_id] = LlmBreaker(s.agent_llm_breaker_failures, s.agent_llm_breaker_cooldown_ms, real_ms)
        return self.breakers[agent_id]

    @property
    def kill_active(self) -> bool:
        return self.svc.kill_switch.active

    @property
    def running(self) -> bool:
        return self.paused_reason is None and not self.kill_active and bool(self.gate.get("active_trader_ids"))

    def state_reason(self) -> str | None:
        if self.kill_active:
            return "kill_switch"
        if self.paused_reason:
            return self.paused_reason
        if not self.gate.get("active_trader_ids"):
            return "market_gate" if self.gate.get("enabled") else "no_running_agents"
        return None

    async def pause(self, reason: str = "manual", *, strict: bool = False) -> bool:
        """Pause until an explicit resume, across restarts too (persisted atomically); returns
        whether the pause reached the disk. A pause is a safety action: it holds in memory even when
        the write fails (and is retried), unless `strict` (a reset must persist before it changes
        anything: the OSError is raised and nothing changed)."""
        if strict:
            await anyio.to_thread.run_sync(self._save_pause, reason, limiter=self.worker)
        self.paused_reason = reason
        persisted = strict or await self._try_save_pause()
        self.bump()
        return persisted

    async def resume(self) -> None:
        """Resume only once the file says so: a failed write (OSError) leaves the runtime paused."""
        await anyio.to_thread.run_sync(self._save_pause, None, limiter=self.worker)
        self.paused_reason = None
        self.refresh_gate()
        self.bump()

    async def _try_save_pause(self) -> bool:
        try:
            await anyio.to_thread.run_sync(self._save_pause, self.paused_reason, limiter=self.worker)
        except OSError:
            self.pause_persisted = False
            log.warning("PAUSE IS IN MEMORY ONLY: %s could not be written; a restart now would resume; retrying",
                        self.pause_file.name)
            return False
        return True

    def _save_pause(self, reason: str | None) -> None:
        try:
            write_json_atomic(self.pause_file, {"paused_reason": reason, "updated_at": iso_now()})
        except OSError as exc:
            self.pause_write_health.failed(exc, self.pause_file)
            raise
        self.pause_persisted = True  # what is in memory is on disk now
        self.pause_write_health.ok()

    async def retry_unpersisted_state(self) -> None:
        """Write a pause or a kill switch that holds in memory only (full disk at the time), probe
        the snapshot directory after failed saves, and retry a replay position that could not be saved."""
        if not self.pause_persisted and self.paused_reason is not None:
            if await self._try_save_pause():
                log.warning("pause (%s) is persisted now", self.paused_reason)
        if not self.svc.kill_switch.persisted:
            if await anyio.to_thread.run_sync(self.svc.kill_switch.retry_persist, limiter=self.worker):
                log.warning("kill switch is persisted now")
        if self.svc.memory.write_health.failing:
            await anyio.to_thread.run_sync(self.svc.memory.probe_write, limiter=self.worker)
        if self.replay_position_write_health.failing:
            await self.save_replay_position()

    def _load_pause(self) -> str | None:
        try:
            saved = read_json(self.pause_file) or {}
        except CorruptFileError:
            log.error("unreadable %s: starting paused until an operator resumes", self.pause_file.name)
            return "unreadable_pause_state"
        reason = saved.get("paused_reason") if isinstance(saved, dict) else None
        return reason if isinstance(reason, str) and reason else None

    def state(self) -> dict:
        return {
            "running": self.running,
            "paused_reason": self.state_reason(),
            "cycle_ms": self.effective_cycle_ms(),
            "in_flight": bool(self.in_flight),
            "in_flight_trader_ids": sorted(self.in_flight),
            "last_cycle_started_ms": self.last_cycle_started_ms,
            "last_cycle_completed_ms": self.last_cycle_completed_ms,
        }

    def cycles_expected(self) -> bool:
        """Whether the scheduler should be starting cycles now (running, and in replay mode the replay
        advancing): only then is a missing cycle a sign of a wedged scheduler."""
        if not self.running:
            return False
        if self.settings.live_mode:
            return True
        replay = self.svc.replay
        return replay is not None and replay.running and not replay.completed

    def _scheduler_tick(self) -> None:
        if not self.cycles_expected():
            self.idle_at_ms = wall_ms()

    def heartbeat(self) -> dict:
        """The cycle heartbeat for probes: how long since the last cycle started (or since cycles
        became due), and how often they are due. A scheduler that stopped ticking, or a cycle that
        never ends, makes `age_ms` grow past a few `expected_every_ms`."""
        if not self.cycles_expected():
            return {"expected": False, "expected_every_ms": None, "age_ms": None}
        since = max(self.last_cycle_started_ms or 0, self.idle_at_ms)
        return {"expected": True, "expected_every_ms": self.effective_cycle_ms(), "age_ms": max(0, wall_ms() - since)}

    def effective_cycle_ms(self) -> int:
        if self.settings.live_mode or not self.svc.replay:
            return self.cycle_ms
        speed = self.svc.replay.speed
        return int(round(self.decision_every_bars * 60000 / max(speed, 0.1)))

    def set_cycle_ms(self, value: float) -> None:
        if self.settings.live_mode or not self.svc.replay:
            self.cycle_ms = int(min(120000, max(3000, value)))
        else:
            speed = self.svc.replay.speed
            self.decision_every_bars = int(min(240, max(1, round(min(value, 1e9) * speed / 60000))))
        self.bump()

    def set_decision_every_bars(self, value: float) -> None:
        self.decision_every_bars = int(min(240, max(1, int(value))))
        self.bump()

    def clock_ms(self) -> int:
        """The evaluation clock: the replay bar's end in replay mode, the wall clock live."""
        if self.svc.replay is not None:
            clock = self.svc.replay.clock_ms()
            if clock:
                return clock
        return wall_ms()

    def call_count(self, agent_id: str) -> int:
        snap = self.svc.memory.get(agent_id)
        return int(((snap or {}).get("stats") or {}).get("decisions") or 0)

    def reset_history(self, agent_ids: list[str] | None = None) -> None:
        for agent_id in agent_ids if agent_ids is not None else list(self.history):
            self.history.pop(agent_id, None)
            self.agent_errors.pop(agent_id, None)
            self.exclusions.pop(agent_id, None)
        if agent_ids is None:
            self.metrics = {k: 0 for k in self.metrics}
        self.bump()

    # ---- gate --------------------------------------------------------------------------

    def running_manifests(self) -> dict[str, dict]:
        out = {}
        for agent_id in self.svc.registry.running_ids():
            rec = self.svc.registry.get(agent_id)
            if rec and rec.get("available", True):
                out[agent_id] = rec
        return out

    def refresh_gate(self) -> dict:
        s = self.settings
        live_status = {m: p.status() for m, p in self.svc.live.frames.items()}
        self.gate = market_gate.evaluate(
            enabled=s.session_guard_enabled,
            require_fresh=s.agent_session_guard_require_fresh_live_data,
            check_ms=s.agent_session_guard_check_ms,
            now_ms=wall_ms(),
            running=self.running_manifests(),
            live_status=live_status,
        )
        return self.gate

    async def refresh_live(self) -> None:
        """Re-read changed live files in a worker thread (a frames file can be megabytes)."""
        if not self.settings.live_mode:
            return
        async with self._refresh_lock:
            await anyio.to_thread.run_sync(lambda: [p.refresh() for p in self.svc.live.all()], limiter=self.worker)

    async def watch_live_files(self) -> None:
        """LIVE_FILE_WATCH: reload a replaced live file at once; the rate-limited polling stays the fallback."""
        files = [*self.svc.live.all(), *([self.svc.daily] if self.svc.daily is not None else [])]
        self.watcher = LiveFileWatcher(files, self._reload_files)
        await self.watcher.run()

    async def _reload_files(self, files: list) -> None:
        loaded = await anyio.to_thread.run_sync(lambda: [f.refresh() for f in files], limiter=self.worker)
        if any(loaded):
            self.refresh_gate()
            self.bump()

    # ---- cycles ------------------------------------------------------------------------

    async def run_cycle(self, *, force: bool = False) -> dict:
        """One cycle over the active agents not already deciding; returns a summary."""
        await self.refresh_live()
        self.refresh_gate()
        if self.kill_active:
            return {"ran": False, "reason": "kill_switch", "decisions": []}
        if not force and not self.running:
            return {"ran": False, "reason": self.state_reason(), "decisions": []}
        if force:
            await self._wait_for_in_flight()
        agents = [a for a in self.gate.get("active_trader_ids", []) if a not in self.in_flight]
        if not agents:
            return {"ran": False, "reason": "nothing_to_run" if self.in_flight else self.state_reason(), "decisions": []}
        # Saved before any snapshot of this round, so after a crash the snapshots are never ahead of the replay.
        if not await self.save_replay_position():
            return {"ran": False, "reason": "replay_position_unsaved", "decisions": []}
        self.last_cycle_started_ms = wall_ms()
        self.metrics["totalCycles"] += 1
        replay_at_start = self.svc.replay.status() if self.svc.replay else None
        results: dict[str, dict | None] = {}

        async def one(agent_id: str) -> None:
            results[agent_id] = await self.decide(agent_id)

        async with anyio.create_task_group() as tg:
            for agent_id in agents:
                tg.start_soon(one, agent_id)
        failed = [a for a, r in results.items() if r is None and a in self.agent_errors]
        self.metrics["failedCycles" if failed else "successfulCycles"] += 1
        labels = {a: self._outcomes.pop(a) for a in agents if a in self._outcomes}
        log.info("%s", round_line(self.metrics["totalCycles"], labels, failed, replay_at_start))
        self.last_cycle_completed_ms = wall_ms()
        self.bump()
        return {
            "ran": True,
            "trader_ids": agents,
            "failed_trader_ids": failed,
            "decisions": [
                {"trader_id": a, "cycle_number": r["cycle_number"], "decision": r["decisions"][0]}
                for a, r in results.items() if r
            ],
        }

    async def _wait_for_in_flight(self) -> None:
        """An operator's step covers every active agent: decisions already running (the timer's,
        a slow LLM) finish first, bounded by two LLM timeouts, instead of the step running nothing."""
        with anyio.move_on_after(2 * self.settings.agent_llm_timeout_ms / 1000 + 5):
            await self._none_in_flight.wait()

    async def decide(self, agent_id: str) -> dict | None:
        """Run one decision for one agent; returns the decision record, or None."""
        rec = self.svc.registry.get(agent_id)
        if not rec:
            return None
        self.in_flight.add(agent_id)
        self._none_in_flight.clear()
        try:
            return await self._decide(agent_id, rec)
        except Exception as exc:  # one agent's failure must not stop the others
            code = getattr(exc, "code", None) or type(exc).__name__
            self.agent_errors[agent_id] = str(code)
            log.error("decision failed agent=%s error=%s", agent_id, code, exc_info=not getattr(exc, "code", None))
            return None
        finally:
            self.in_flight.discard(agent_id)
            if not self.in_flight:
                self._none_in_flight.set()

    async def _decide(self, agent_id: str, manifest: dict) -> dict | None:
        s = self.settings
        memory = self.svc.memory
        lock = self.lock_for(agent_id)
        market = market_of_exchange(str(manifest.get("exchange_id") or ""))
        async with lock:
            generation = self.generation[agent_id]
            snapshot = await anyio.to_thread.run_sync(
                lambda: memory.ensure(agent_id, manifest.get("agent_name") or agent_id, market=market), limiter=self.worker
            )
        clock = self.clock_ms()
        replay_status = self.svc.replay.status() if self.svc.replay else None
        trading_day = (replay_status or {}).get("trading_day") or trading_day_of(clock, market)
        session = self.svc.replay.session() if self.replay_active else None
        gathered = await anyio.to_thread.run_sync(self._gather, manifest, snapshot, market, clock, trading_day, session, limiter=self.worker)
        cycle_number = int((snapshot.get("stats") or {}).get("decisions") or 0) + 1
        now_iso = iso_now()
        breaker = self.breaker_for(agent_id) if self.llm else None
        outcome = await run_decision(
            trader=manifest, cycle_number=cycle_number, candidates=gathered["candidates"],
            portfolio=gathered["portfolio"], memory_state=gathered["memory_state"], extras=gathered["extras"],
            settings=s, market=market, now_ms=clock, now_iso=now_iso, llm=self.llm, breaker=breaker,
            kill_switch_active=self.kill_active, limiter=self.worker,
        )
        record = outcome.record
        llm_info = record.get("llm") or {}
        if llm_info.get("used") or llm_info.get("failure_reason"):
            self.llm_calls["attempted"] += 1
        if llm_info.get("failure_reason"):
            self.llm_failures[str(llm_info["failure_reason"]).split(":")[0]] += 1
        record["runtime_meta"] = {"decision_every_bars": self.decision_every_bars, "llm_model": s.decision_model if self.llm else None}
        replay_block = _replay_block(replay_status, trading_day, clock)

        async with lock:
            if self.generation[agent_id] != generation or self.kill_active:
                self.discarded_cycles += 1
                reason = "kill_switch_active" if self.kill_active else "reset_during_cycle"
                log.warning("discarded in-flight decision agent=%s reason=%s", agent_id, reason)
                return None
            new_snapshot = await anyio.to_thread.run_sync(
                lambda: portfolio.apply_decision(
                    gathered["snapshot"], record=record, fill=outcome.fill, trading_day=trading_day,
                    replay=replay_block, settings=s, now_iso=now_iso, session=session,
                ),
                limiter=self.worker,
            )
            await anyio.to_thread.run_sync(memory.save, agent_id, new_snapshot, limiter=self.worker)
        self.agent_errors.pop(agent_id, None)
        self._outcomes[agent_id] = outcome_label(record, outcome.audit_fields)
        record["trader_id"] = agent_id
        self.history.setdefault(agent_id, deque(maxlen=HISTORY_LIMIT)).appendleft(record)
        self.bump()
        await self._sinks(agent_id, manifest, market, record, outcome, gathered)
        return record

    def _gather(self, manifest: dict, snapshot: dict, market: str, clock: int, trading_day: str, session: str | None = None) -> dict:
        """Collect frames, re-mark every holding and assemble the decision inputs (worker thread)."""
        s = self.settings
        svc = self.svc
        pool = list(manifest.get("stock_pool") or []) or svc.market.symbols()
        if self.replay_active:
            # A symbol the replay day does not cover is no candidate: its newest bars are another day's.
            at_cursor = svc.replay.symbols_at_cursor()
            pool = [symbol for symbol in pool if symbol in at_cursor]
        pool = pool[: s.agent_candidate_symbol_limit]
        candidates: dict[str, dict] = {}
        excluded: dict[str, str] = {}
        file_reason = self._live_file_hold_reason(market) if s.strict_live_mode else None
        for symbol in pool:
            if file_reason:
                excluded[symbol] = file_reason
                continue
            try:
                intraday = svc.market.get_frames(symbol, "1m", INTRADAY_BARS)["frames"]
                daily = svc.market.get_frames(symbol, "1d", DAILY_BARS)["frames"]
            except Exception as exc:
                if s.strict_live_mode:
                    excluded[symbol] = "symbol_missing"
                    continue
                log.debug("no frames for %s: %s", symbol, exc)
                intraday, daily = [], []
            health = svc.market.assess(symbol, intraday, daily)
            # Bad prices exclude a symbol in every mode; missing or stale data only in strict live mode.
            if not health["usable"] and (s.strict_live_mode or health["reason"] in _SANITY_REASONS):
                excluded[symbol] = health["reason"]
                continue
            features = svc.market.memo.get(("features", symbol), (intraday, daily), lambda: bar_features(symbol, intraday, daily))
            candidates[symbol] = {"intraday": intraday, "daily": daily, "features": features}
        self.exclusions[manifest.get("agent_id") or ""] = excluded
        held = [h["symbol"] for h in snapshot.get("holdings") or [] if h.get("shares")]
        prices = {}
        for symbol in set(held) | set(candidates):
            price = svc.market.latest_price(symbol)
            if price:
                prices[symbol] = price
        snapshot = portfolio.remark(snapshot, prices, now_iso=iso_now())
        return {
            "candidates": candidates,
            "snapshot": snapshot,
            "portfolio": portfolio.portfolio_input(snapshot, trading_day, session),
            "memory_state": {
                "replay": snapshot.get("replay"),
                "stats": snapshot.get("stats"),
                "holdings": snapshot.get("holdings"),
                "recent_actions": snapshot.get("recent_actions"),
            },
            "extras": {**self._extras(market, clock, candidates), "excluded_symbols": excluded},
        }

    def _live_file_hold_reason(self, market: str) -> str | None:
        """Strict live mode: a frames file with an error or stale forces every symbol to hold, with
        or without the session guard."""
        provider = self.svc.live.frames.get(market)
        if provider is None:
            return "live_file_missing"
        status = provider.status()
        if status.get("last_error"):
            return f"live_file_error:{status['last_error']}"
        if status.get("stale"):
            return f"live_file_stale:{status.get('stale_reason')}"
        return None

    def _extras(self, market: str, clock: int, candidates: dict[str, dict]) -> dict:
        live = self.svc.live
        overview_payload = _fresh_payload(live.overview.get(market))
        news_payload = _fresh_payload(live.news.get(market))
        breadth = None
        breadth_payload = _fresh_payload(live.breadth.get(market))
        if breadth_payload is not None:
            breadth = normalize_breadth(breadth_payload)
        elif self.svc.replay_breadth is not None:
            breadth = self.svc.replay_breadth.at(clock)
        if overview_payload is not None:
            overview = {"source_kind": "benchmark", "brief": overview_brief(overview_payload)}
        else:
            overview = {"source_kind": "proxy_watchlist", "brief": _proxy_brief(candidates)}
        titles = news_titles(news_payload, 5) if news_payload is not None else []
        status = live.frames[market].status() if market in live.frames else None
        return {
            "market_overview": overview,
            "news_digest": {"source_kind": "digest_file" if titles else "empty", "titles": titles},
            "market_breadth": breadth,
            "session_gate": market_gate.session_gate_level(
                live_mode=self.settings.live_mode, market=market, now_ms=clock, status=status
            ),
        }

    async def _sinks(self, agent_id: str, manifest: dict, market: str, record: dict, outcome, gathered: dict) -> None:
        """Decision log, audit log, listeners. Failures are counted and logged, never silent."""
        saved_ts_ms = wall_ms()
        day_key = trading_day_of(saved_ts_ms, market)
        line = {**record, "trader_id": agent_id, "day_key": day_key, "saved_ts_ms": saved_ts_ms}
        audit = audit_record(
            agent_id, day_key, saved_ts_ms, record["timestamp"], record["cycle_number"], outcome.audit_fields,
            self.live_files_view(),
        )
        for name, fn in (("decision_log", lambda: self.svc.decisions.append(agent_id, line, day_key=day_key)),
                         ("audit_log", lambda: self.svc.audit.append(agent_id, audit, day_key=day_key))):
            try:
                await anyio.to_thread.run_sync(fn, limiter=self.worker)
            except Exception:
                self.sink_errors[name] += 1
                log.exception("sink %s failed for %s", name, agent_id)
        meta = decision_meta(record, audit)
        for listener in list(self.listeners):
            try:
                result = listener(agent_id, record, meta)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                self.sink_errors["listener"] += 1
                log.exception("decision listener failed for %s", agent_id)

    def live_files_view(self) -> dict:
        out = {}
        for key, market in (("cn_a", "CN-A"), ("us", "US")):
            p = self.svc.live.frames.get(market)
            st = p.status() if p else None
            out[key] = None if st is None else {
                "stale": st.get("stale"), "last_load_ts_ms": st.get("last_load_ts_ms"), "last_mtime_ms": st.get("last_mtime_ms"),
                "last_error": st.get("last_error"), "frame_count": st.get("frame_count"),
                "symbols_1m_count": len(st.get("symbols_1m") or []),
            }
        return out

    # ---- scheduling --------------------------------------------------------------------

    def spawn(self, coro: Awaitable) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run_forever(self) -> None:
        """Replay: one cycle per N advanced bars. Live: a timer plus the session gate."""
        s = self.settings
        self.refresh_gate()
        if self.svc.replay is not None and not s.live_mode:
            while not self._stopping:
                await asyncio.sleep(s.replay_tick_ms / 1000)
                self._scheduler_tick()
                if self.kill_active:
                    continue
                advanced = self.svc.replay.tick()
                if advanced:
                    self._bars_since_cycle += advanced
                if self._bars_since_cycle >= self.decision_every_bars:
                    self._bars_since_cycle = 0
                    if self.running:
                        self.spawn(self.run_cycle())
        elif s.live_mode:
            last_gate = float("-inf")
            last_cycle = time.monotonic() * 1000
            while not self._stopping:
                await asyncio.sleep(0.25)
                self._scheduler_tick()
                now = time.monotonic() * 1000
                if now - last_gate >= s.agent_session_guard_check_ms:
                    last_gate = now
                    await self.refresh_live()
                    self.refresh_gate()
                if now - last_cycle >= self.cycle_ms:
                    last_cycle = now
                    if self.running:
                        self.spawn(self.run_cycle())

    async def maintain(self, every_s: float = MANIFEST_RESCAN_S) -> None:
        """Pick up manifest edits (new agents, changed pools) off the request path (W19)."""
        while not self._stopping:
            await asyncio.sleep(every_s)
            try:
                if await anyio.to_thread.run_sync(self.svc.registry.rescan, limiter=self.worker):
                    self.refresh_gate()
                    self.bump()
            except Exception:
                log.exception("manifest rescan failed")

    async def retry_persistence(self, every_s: float = PERSIST_RETRY_S) -> None:
        """Keep trying to write a pause or kill switch that a full disk left in memory only."""
        while not self._stopping:
            await asyncio.sleep(every_s)
            try:
                await self.retry_unpersisted_state()
            except Exception:
                log.exception("state persistence retry failed")

    def note_replay_step(self) -> None:
        self._bars_since_cycle = 0

    async def drain(self, timeout_s: float) -> None:
        """Stop starting cycles and wait (bounded) for the in-flight ones to finish."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)
        await self.save_replay_position()


_SANITY_REASONS = frozenset({sanity.NON_FINITE_PRICE, sanity.PRICE_LIMIT_BREAK})


def _fresh_payload(provider) -> dict | None:
    if provider is None:
        return None
    status = provider.status()
    if status.get("stale") or not status.get("has_last_good", True):
        return None
    payload = provider.payload() if hasattr(provider, "payload") else getattr(provider, "data", None)
    return payload if isinstance(payload, dict) else None


def _proxy_brief(candidates: dict[str, dict]) -> str:
    """A watchlist brief from the candidates' own intraday moves when no overview file is fresh."""
    moves = []
    for symbol, c in candidates.items():
        bars = c["intraday"]
        if len(bars) >= 2:
            first, last = bars[0]["bar"]["open"], bars[-1]["bar"]["close"]
            if first:
                moves.append((symbol, last / first - 1))
    if not moves:
        return ""
    up = sum(1 for _, m in moves if m > 0)
    best = max(moves, key=lambda m: m[1])
    worst = min(moves, key=lambda m: m[1])
    return f"watchlist {up}/{len(moves)} up; best {best[0]} {best[1]:+.2%}; worst {worst[0]} {worst[1]:+.2%}"


def _replay_block(replay_status: dict | None, trading_day: str, clock: int) -> dict:
    if replay_status:
        return {
            "trading_day": trading_day,
            "day_index": replay_status.get("day_index") or 0,
            "day_count": replay_status.get("day_count") or 0,
            "bar_cursor": replay_status.get("cursor_index", -1),
            "is_day_start": bool(replay_status.get("is_day_start")),
            "is_day_end": bool(replay_status.get("is_day_end")),
        }
    return {"trading_day": trading_day, "day_index": 0, "day_count": 0, "bar_cursor": -1, "is_day_start": False, "is_day_end": False}


def decision_meta(record: dict, audit: dict) -> dict:
    d = (record.get("decisions") or [{}])[0]
    return {
        "saved_ts_ms": audit.get("saved_ts_ms"),
        "decision_ts": record.get("timestamp"),
        "cycle_number": record.get("cycle_number"),
        "thinking_symbol": d.get("symbol"),
        "forced_hold": audit.get("forced_hold"),
        "data_readiness": audit.get("data_readiness"),
        "session_gate": audit.get("session_gate"),
        "market_overview": audit.get("market_overview"),
        "market_breadth": audit.get("market_breadth"),
        "news_digest": audit.get("news_digest"),
    }
