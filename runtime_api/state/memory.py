"""Agent memory snapshots (`agent.memory.v2`), one JSON file per agent under the memory dir.

Any agent id is served, lazily loaded from `<dir>/<id>.json` and cached (W2); existing Node
snapshots load unchanged, merged over defaults. Writes are atomic and locked (W1). A file that
cannot be parsed is moved aside to `<id>.json.corrupt-<UTC stamp>` and the agent is marked errored:
it is never silently reset, and `ensure()` refuses it (409 `agent_memory_corrupt`) until a full
reset. Each reset bumps the agent's generation, so a cycle started before it cannot save over it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime_api.state import storage
from runtime_api.errors import ApiError
from runtime_api.manifests import AGENT_ID_RE
from runtime_api.portfolio.accounting import DEFAULT_BALANCE, num, rnd
from runtime_api.state.write_health import WriteHealth

log = logging.getLogger("onlytrade.memory")

SCHEMA_VERSION = "agent.memory.v2"
ABSENT_RECHECK_S = 1.0
_MERGED_OBJECTS = ("meta", "config", "replay", "stats")
_LISTS = ("daily_journal", "holdings", "open_lots", "closed_positions", "trade_events", "equity_curve", "recent_actions")


def utc_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _check_id(agent_id: str) -> str:
    agent_id = str(agent_id or "").strip()
    if not AGENT_ID_RE.match(agent_id):
        raise ApiError(400, "invalid_agent_id")
    return agent_id


def market_config(market: str) -> dict:
    if market == "US":
        return {"market": "US", "currency": "USD", "lot_size": 1}
    return {"market": "CN-A", "currency": "CNY", "lot_size": 100}


def _equity_point(now_iso: str, total: float, initial: float) -> dict:
    pct = rnd((total - initial) / max(1.0, initial) * 100, 4)
    return {"timestamp": now_iso, "total_equity": rnd(total, 2), "pnl": rnd(total - initial, 2), "pnl_pct": pct,
            "total_pnl_pct": pct, "cycle_number": 0}


def default_snapshot(agent_id: str, trader_name: str, settings: Any, now_iso: str, *, market: str = "CN-A") -> dict:
    """A fresh snapshot: 100000 cash, zero counters, one equity point, config for the agent's market."""
    balance = DEFAULT_BALANCE
    run_stamp = "".join(c for c in now_iso if c.isdigit())[:14]
    return {
        "schema_version": SCHEMA_VERSION,
        "meta": {"run_id": f"run-{run_stamp}-{agent_id}", "created_at": now_iso, "updated_at": now_iso, "next_position_id": 1},
        "config": {
            **market_config(market),
            "initial_balance": balance,
            "decision_every_bars": int(getattr(settings, "agent_decision_every_bars", 10)),
            "llm_model": None,
            "commission_rate": float(getattr(settings, "agent_commission_rate", 0.0003)),
        },
        "trader_id": agent_id,
        "trader_name": trader_name,
        "updated_at": None,
        "replay": {"trading_day": None, "day_index": 0, "day_count": 0, "bar_cursor": -1, "is_day_start": False, "is_day_end": False},
        "stats": {
            "initial_balance": balance, "latest_total_balance": balance, "latest_available_balance": balance,
            "latest_unrealized_profit": 0, "return_rate_pct": 0, "peak_balance": balance, "trough_balance": balance,
            "decisions": 0, "wins": 0, "losses": 0, "holds": 0, "buy_trades": 0, "sell_trades": 0, "total_fees_paid": 0,
        },
        "daily_journal": [],
        "holdings": [],
        "open_lots": [],
        "closed_positions": [],
        "trade_events": [],
        "equity_curve": [_equity_point(now_iso, balance, balance)],
        "recent_actions": [],
    }


def merge_snapshot(parsed: dict, agent_id: str, settings: Any, now_iso: str) -> dict:
    """Defaults, then the file's contents, then the nested objects merged key by key (Node's hydrate)."""
    market = (parsed.get("config") or {}).get("market") if isinstance(parsed.get("config"), dict) else None
    base = default_snapshot(agent_id, str(parsed.get("trader_name") or agent_id), settings, now_iso,
                            market="US" if market == "US" else "CN-A")
    out = {**base, **parsed, "trader_id": agent_id}
    for key in _MERGED_OBJECTS:
        out[key] = {**base[key], **parsed[key]} if isinstance(parsed.get(key), dict) else base[key]
    for key in _LISTS:
        if not isinstance(out.get(key), list):
            out[key] = base[key]
    return out


def reset_snapshot(snapshot: dict, *, positions: bool, stats: bool, settings: Any, now_iso: str, trader_name: str) -> dict:
    """The §1.6 partial reset: positions become cash at their last marks; stats restart from the current total."""
    out = dict(snapshot)
    st = dict(snapshot.get("stats") or {})
    if positions:
        out.update(holdings=[], open_lots=[], closed_positions=[], trade_events=[])
        st["latest_available_balance"] = st.get("latest_total_balance", DEFAULT_BALANCE)
        st["latest_unrealized_profit"] = 0
    if stats:
        initial = max(1.0, num(st.get("initial_balance"), DEFAULT_BALANCE))
        total = num(st.get("latest_total_balance"), initial)
        st.update(
            initial_balance=rnd(initial, 2), latest_total_balance=rnd(total, 2),
            return_rate_pct=rnd((total - initial) / initial * 100, 4), peak_balance=rnd(total, 2), trough_balance=rnd(total, 2),
            decisions=0, wins=0, losses=0, holds=0, buy_trades=0, sell_trades=0, total_fees_paid=0,
        )
        out.update(daily_journal=[], recent_actions=[], equity_curve=[_equity_point(now_iso, total, initial)])
    out["stats"] = st
    out["config"] = {**(snapshot.get("config") or {}), "commission_rate": float(getattr(settings, "agent_commission_rate", 0.0003))}
    out["meta"] = {**(snapshot.get("meta") or {}), "updated_at": now_iso}
    out["trader_name"] = trader_name
    out["updated_at"] = now_iso
    return out


class MemoryStore:
    """Snapshots by agent id: cached in memory, persisted atomically. Methods block (file I/O)."""

    def __init__(self, memory_dir: Path, *, settings: Any):
        self.dir = Path(memory_dir)
        self.settings = settings
        self.version = 0
        self._lock = threading.Lock()
        self._agent_locks: dict[str, threading.RLock] = {}
        self._cache: dict[str, dict] = {}
        self._errored: dict[str, str] = {}
        self._absent: dict[str, float] = {}  # id -> when its file was last found missing
        self._generation: dict[str, int] = {}
        self.write_health = WriteHealth("snapshots")

    def path_for(self, agent_id: str) -> Path:
        return self.dir / f"{_check_id(agent_id)}.json"

    def _agent_lock(self, agent_id: str) -> threading.RLock:
        with self._lock:
            return self._agent_locks.setdefault(agent_id, threading.RLock())

    def _write(self, path: Path, snapshot: dict) -> None:
        """Every snapshot write, reported to `write_health` (a full disk shows in /health/ready)."""
        try:
            storage.write_json_atomic(path, snapshot)
        except OSError as exc:
            self.write_health.failed(exc, path)
            raise
        self.write_health.ok()

    def probe_write(self) -> bool:
        """After failed saves: write and remove a small file where the snapshots live, so readiness
        recovers once the disk takes writes again, even while no cycle runs (paused, market closed)."""
        probe = self.dir / ".write-probe.json"
        try:
            storage.write_json_atomic(probe, {"probe": utc_iso()})
            probe.unlink(missing_ok=True)
        except OSError:
            return False
        self.write_health.ok()
        return True

    def _store(self, agent_id: str, snapshot: dict) -> None:
        with self._lock:
            self._cache[agent_id] = snapshot
            self.version += 1

    # ---- loading -----------------------------------------------------------------------------

    def _load(self, agent_id: str) -> dict | None:
        """Read the file (caller holds the agent lock); quarantine it when it cannot be used."""
        path = self.path_for(agent_id)
        try:
            raw = storage.read_json(path)
            if raw is None:
                self._absent[agent_id] = time.monotonic()
                return None
            if not isinstance(raw, dict):
                raise storage.CorruptFileError(path, "not a JSON object")
            if raw.get("trader_id") not in (None, agent_id):
                raise storage.CorruptFileError(path, f"trader_id {raw.get('trader_id')!r} does not match the file name")
        except storage.CorruptFileError as exc:
            self._quarantine(agent_id, path, exc.reason)
            return None
        snapshot = merge_snapshot(raw, agent_id, self.settings, utc_iso())
        self._store(agent_id, snapshot)
        return snapshot

    def _quarantine(self, agent_id: str, path: Path, reason: str) -> None:
        target = path.with_name(f"{path.name}.corrupt-{_stamp()}")
        try:
            with storage.lock_for(path):
                os.replace(path, target)
            detail = f"{reason} (moved to {target.name})"
        except OSError as exc:
            detail = f"{reason} (could not move aside: {exc.strerror or exc})"
        log.error("agent memory corrupt agent=%s: %s", agent_id, detail)
        with self._lock:
            self._errored[agent_id] = detail
            self._cache.pop(agent_id, None)
            self.version += 1

    def get(self, agent_id: str) -> dict | None:
        """The cached snapshot (loaded on first use), or None: no file, errored, or an invalid id.

        The returned dict is shared: treat it as read-only and derive changes with `portfolio`.
        """
        agent_id = str(agent_id or "").strip()
        if not AGENT_ID_RE.match(agent_id):
            return None
        # Fast path without the lock: save() holds it through the fsync, and viewers read from
        # the event loop. Dict reads are atomic, and _store() swaps in a whole new snapshot.
        if agent_id not in self._errored:
            cached = self._cache.get(agent_id)
            if cached is not None:
                return cached
            # A trader with no snapshot yet is read by every viewer poll: look for the file at
            # most once a second, not per request (every write fills the cache first).
            missing_since = self._absent.get(agent_id)
            if missing_since is not None and time.monotonic() - missing_since < ABSENT_RECHECK_S:
                return None
        with self._agent_lock(agent_id):
            if agent_id in self._errored:
                return None
            cached = self._cache.get(agent_id)
            return cached if cached is not None else self._load(agent_id)

    def ensure(self, agent_id: str, trader_name: str, *, market: str | None = None) -> dict:
        """The snapshot to decide on: the file's, or a default one (not written until the first save).

        `market` ('CN-A' or 'US', from the manifest) corrects the config's market/currency/lot size.
        Raises 409 `agent_memory_corrupt` while the agent is errored.
        """
        agent_id = _check_id(agent_id)
        with self._agent_lock(agent_id):
            snapshot = self.get(agent_id)
            if agent_id in self._errored:
                raise ApiError(409, "agent_memory_corrupt", self._errored[agent_id])
            if snapshot is None:
                snapshot = default_snapshot(agent_id, trader_name, self.settings, utc_iso(), market=market or "CN-A")
            else:
                config = snapshot.get("config") or {}
                wanted = market_config(market) if market else {}
                if snapshot.get("trader_name") != trader_name or any(config.get(k) != v for k, v in wanted.items()):
                    snapshot = {**snapshot, "trader_name": trader_name, "config": {**config, **wanted}}
                else:
                    return snapshot
            self._store(agent_id, snapshot)
            return snapshot

    # ---- writing -----------------------------------------------------------------------------

    def generation(self, agent_id: str) -> int:
        with self._lock:
            return self._generation.get(agent_id, 0)

    def save(self, agent_id: str, snapshot: dict, *, generation: int | None = None) -> None:
        """Persist atomically (pretty JSON). With `generation`, refuse (409) if a reset happened since."""
        agent_id = _check_id(agent_id)
        with self._agent_lock(agent_id):
            if agent_id in self._errored:
                raise ApiError(409, "agent_memory_corrupt", self._errored[agent_id])
            if generation is not None and generation != self.generation(agent_id):
                raise ApiError(409, "memory_generation_changed")
            self._write(self.path_for(agent_id), snapshot)
            self._store(agent_id, snapshot)

    # ---- status ------------------------------------------------------------------------------

    def errored(self) -> dict[str, str]:
        """Agents whose snapshot was quarantined, with the reason (cleared by a full reset)."""
        with self._lock:
            return dict(self._errored)

    def status(self, agent_id: str) -> dict:
        agent_id = _check_id(agent_id)
        path = self.path_for(agent_id)
        with self._lock:
            return {
                "trader_id": agent_id,
                "file": path.name,
                "exists": path.exists(),
                "loaded": agent_id in self._cache,
                "errored": agent_id in self._errored,
                "error": self._errored.get(agent_id),
                "generation": self._generation.get(agent_id, 0),
            }

    def cached(self) -> dict[str, dict]:
        """Every snapshot currently held in memory, by id."""
        with self._lock:
            return dict(self._cache)

    # ---- resets and backups ------------------------------------------------------------------

    def reset(self, agent_id: str, *, memory: bool = False, positions: bool = False, stats: bool = False,
              trader_name: str | None = None, market: str | None = None) -> dict:
        """Apply the §1.6 reset scopes to any agent and persist; returns the new snapshot.

        400 `no_reset_scope_selected` without a scope; an errored agent needs `memory=True` (409 otherwise).
        """
        agent_id = _check_id(agent_id)
        if not (memory or positions or stats):
            raise ApiError(400, "no_reset_scope_selected")
        with self._agent_lock(agent_id):
            current = self.get(agent_id)
            if agent_id in self._errored and not memory:
                raise ApiError(409, "agent_memory_corrupt", "only a full memory reset clears a corrupt snapshot")
            now = utc_iso()
            name = trader_name or (current or {}).get("trader_name") or agent_id
            if memory or current is None:
                held_market = ((current or {}).get("config") or {}).get("market")
                new = default_snapshot(agent_id, name, self.settings, now, market=market or held_market or "CN-A")
            else:
                new = reset_snapshot(current, positions=positions, stats=stats, settings=self.settings, now_iso=now, trader_name=name)
            self._write(self.path_for(agent_id), new)
            with self._lock:
                self._errored.pop(agent_id, None)
                self._cache[agent_id] = new
                self._generation[agent_id] = self._generation.get(agent_id, 0) + 1
                self.version += 1
            log.info("agent memory reset agent=%s memory=%s positions=%s stats=%s", agent_id, memory, positions, stats)
            return new

    def reset_all(self, ids: Iterable[str], *, names: Mapping[str, str] | None = None,
                  markets: Mapping[str, str] | None = None) -> dict[str, dict]:
        """Full reset of each given agent (other agents' files are not touched)."""
        names, markets = names or {}, markets or {}
        return {i: self.reset(i, memory=True, trader_name=names.get(i), market=markets.get(i)) for i in ids}

    def plan_reset(self, agent_id: str, *, memory: bool = False, positions: bool = False, stats: bool = False) -> dict:
        """What `reset` would clear, changing nothing (for dry runs)."""
        agent_id = _check_id(agent_id)
        snapshot = self.get(agent_id) or {}
        clears_positions, clears_stats = memory or positions, memory or stats

        def count(key: str, scope: bool) -> int:
            return len(snapshot.get(key) or []) if scope else 0

        return {
            "trader_id": agent_id,
            "file": self.path_for(agent_id).name,
            "exists": self.path_for(agent_id).exists(),
            "errored": self.errored().get(agent_id),
            "reset_memory": memory,
            "reset_positions": positions,
            "reset_stats": stats,
            "clears": {
                "holdings": count("holdings", clears_positions),
                "open_lots": count("open_lots", clears_positions),
                "closed_positions": count("closed_positions", clears_positions),
                "trade_events": count("trade_events", clears_positions),
                "daily_journal": count("daily_journal", clears_stats),
                "recent_actions": count("recent_actions", clears_stats),
                "equity_points": count("equity_curve", clears_stats),
                "decisions": int(num((snapshot.get("stats") or {}).get("decisions"))) if clears_stats else 0,
            },
        }

    def backup(self, ids: Iterable[str], backup_dir: Path) -> Path:
        """Copy the current snapshot files of `ids` into a new timestamped folder; returns the folder."""
        folder = Path(backup_dir) / f"agent-memory-{_stamp()}"
        while folder.exists():
            folder = folder.with_name(folder.name + "-1")
        folder.mkdir(parents=True)
        try:
            for agent_id in ids:
                source = self.path_for(agent_id)
                with storage.lock_for(source):
                    try:
                        data = source.read_bytes()
                    except FileNotFoundError:
                        continue
                    storage.write_bytes_atomic(folder / source.name, data, locked=False)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)  # no half backup that looks like a whole one
            raise
        log.info("agent memory backed up to %s", folder)
        return folder
