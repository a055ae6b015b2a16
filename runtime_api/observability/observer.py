"""One app's observability: build info, the metrics registry, the alert sender, the state watcher.

`attach(ctx)` hooks them into the runtime without touching its modules: a decision listener, a
timing wrapper around `MemoryStore.save`, and a look at every control-audit entry (resets).
`start()` and `stop()` run in the app's lifespan (boot and clean-shutdown alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import anyio

from . import alerts as alerts_mod
from .build_info import build_info
from .metrics import build_registry, timed_save
from .watch import StateWatcher

log = logging.getLogger("onlytrade.observability")
KEY = "observability"
RESET_ACTIONS = {"dev.factory_reset": ("reset.factory", "Factory reset"), "dev.reset_agent": ("reset.agent", "Agent reset")}


class Observability:
    def __init__(self, ctx):
        self.ctx = ctx
        self.build = build_info()
        self.registry, self.instruments = build_registry(ctx, self.build)
        self.alerts = alerts_mod.from_settings(
            ctx.settings, on_result=lambda kind, result: self.instruments.alerts.labels(kind.split(".")[0], result).inc())
        self.watcher = StateWatcher(ctx, self.alerts)
        self._task: asyncio.Task | None = None

    def attach(self) -> Observability:
        ctx = self.ctx
        ctx.extra[KEY] = self
        ctx.runtime.listeners.append(self.instruments.on_decision)
        ctx.svc.memory.save = timed_save(ctx.svc.memory.save, self.instruments, on_failure=self._save_failed)
        audit = ctx.control_audit
        if audit is not None:
            write = audit.write

            async def audited(entry: dict) -> None:
                await write(entry)
                self._on_control(entry)

            audit.write = audited
        return self

    def _save_failed(self, agent_id: str, code: str) -> None:
        self.alerts.notify("snapshot.save_failed", f"Snapshot save failed for {agent_id}", severity="critical",
                           agent=agent_id, error=code)

    def _on_control(self, entry: dict) -> None:
        known = RESET_ACTIONS.get(str(entry.get("action")))
        if known and entry.get("result") == "ok":
            kind, title = known
            self.alerts.notify(kind, title, severity="warning", target=entry.get("target"), actor=entry.get("actor"),
                               request_id=entry.get("request_id"))

    async def start(self) -> None:
        self.alerts.start()
        self.watcher.check()  # the boot state is the baseline, and its Gate line is logged once
        s = self.ctx.settings
        self.alerts.notify("runtime.boot", "Runtime started", severity="info", mode=s.runtime_data_mode,
                           version=self.build["version"], commit=self.build["commit"][:12],
                           kill_switch=self.ctx.svc.kill_switch.active or None, paused=self.ctx.runtime.paused_reason)
        self._task = asyncio.create_task(self.watcher.run(), name="state-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.watcher.check()
        await self.watcher.flush()
        self.alerts.notify("runtime.shutdown", "Runtime stopped cleanly", severity="info")
        await anyio.to_thread.run_sync(self.alerts.close)


def of(ctx) -> Observability:
    return ctx.extra[KEY]
