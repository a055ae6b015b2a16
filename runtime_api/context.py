"""The application context: every service a route may use, built once per app."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import clock
from .access.gate import Access
from .decision.agent_runtime import AgentRuntime
from .access.control_route import ControlAudit, FailureLimiter
from .errors import ApiError
from .market.freshness import FreshnessCache, run_checks
from .web.http import ResponseCache
from .observability.loop_monitor import LoopMonitor
from .services import Services
from .settings import Settings


@dataclass
class AppContext:
    settings: Settings
    svc: Services
    runtime: AgentRuntime
    cache: ResponseCache = field(default_factory=ResponseCache)
    auth_failures: FailureLimiter = field(default_factory=FailureLimiter)
    loop_monitor: LoopMonitor = field(default_factory=LoopMonitor)
    control_audit: ControlAudit | None = None
    access: Access | None = None  # tokens, roles, trusted proxies, approvals (issue 10)
    boot_monotonic: float = field(default_factory=time.monotonic)
    boot_iso: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    ready: bool = False
    extra: dict = field(default_factory=dict)
    _freshness_cache: FreshnessCache = field(default_factory=FreshnessCache)
    _freshness_lock: threading.Lock = field(default_factory=threading.Lock)

    def freshness_report(self) -> dict:
        """`freshness.run_checks` over every live file, sharing one parse cache (blocking: call it
        from a worker thread). The CLI, runtime status, room packets and preflight all judge
        freshness through this one module."""
        with self._freshness_lock:
            return run_checks(self.settings, clock.now_ms(), cache=self._freshness_cache)

    def state_version(self) -> tuple:
        """Everything a cached viewer response may depend on, except the replay cursor."""
        return (self.svc.registry.version, self.svc.memory.version, self.runtime.version, self.svc.kill_switch.active)

    def replay_version(self) -> tuple:
        """State version plus the replay's own state."""
        return self.state_version() + (self.replay_state(),)

    def replay_state(self) -> tuple | None:
        """The replay's cursor and controls, read from attributes (status() builds a dict): what
        market reads depend on, and nothing that moves with the agents' decisions."""
        r = self.svc.replay
        return (r.cursor, r.running, r.speed, r.loop, r.completed, id(r.index)) if r else None

    # ---- trader lookups -------------------------------------------------------------------

    def trader(self, agent_id: str) -> dict:
        """A registered, available agent, or 404 trader_not_found (never another trader's data)."""
        rec = self.svc.registry.get(agent_id) if agent_id else None
        if not rec or rec.get("available") is False:
            raise ApiError(404, "trader_not_found", f"no registered trader {agent_id!r}")
        return rec

    def trader_or_default(self, agent_id: str) -> dict:
        """An explicit id must exist; a missing id means the first lobby trader (the front end omits it)."""
        return self.trader(self.trader_id_or_default(agent_id))

    def trader_id_or_default(self, agent_id: str) -> str:
        """The id `trader_or_default` answers for, without building its view (ETags ask per request)."""
        if agent_id:
            if not self.svc.registry.has(agent_id):
                raise ApiError(404, "trader_not_found", f"no registered trader {agent_id!r}")
            return agent_id
        lobby = self.svc.registry.lobby_ids()
        if not lobby:
            raise ApiError(404, "trader_not_found", "no registered traders")
        return lobby[0]
