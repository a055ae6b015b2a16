"""The kill switch: persisted API state plus two operator overrides that always win.

Sources, any of which holds it on: the persisted API state (`KILL_SWITCH_PATH`, atomic JSON as the
Node runtime's `kill-switch.json`), `KILL_SWITCH=1` in the environment, or a `KILL_SWITCH` file in
the runtime state dir (touch it to stop every agent without the API). Checked before every cycle.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .state.write_health import WriteHealth
from .state.storage import CorruptFileError, read_json, write_json_atomic

log = logging.getLogger("onlytrade.kill_switch")

DEFAULT_REASON = "manual_terminate_all_agents"
FLAG_CHECK_S = 0.25


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KillSwitch:
    def __init__(self, path: Path, state_dir: Path, environ: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.flag_file = Path(state_dir) / "KILL_SWITCH"
        env = os.environ if environ is None else environ
        self.env_forced = str(env.get("KILL_SWITCH", "")).strip().lower() in {"1", "true", "yes", "on"}
        self._lock = threading.Lock()
        self._flag_checked_at = float("-inf")
        self._flag_present = False
        self.load_error: str | None = None
        self.persisted = True  # False while the API state is on in memory but not yet on disk
        self.write_health = WriteHealth("kill_switch")
        self.state: dict[str, Any] = {
            "active": False,
            "reason": None,
            "activated_at": None,
            "activated_by": None,
            "deactivated_at": None,
            "deactivated_by": None,
        }
        try:
            saved = read_json(self.path)
        except CorruptFileError as exc:
            # Fail safe: an unreadable kill-switch file counts as active until an operator decides.
            saved = None
            self.load_error = exc.reason
        if isinstance(saved, dict) and isinstance(saved.get("active"), bool):
            self.state.update({k: saved.get(k) for k in self.state})

    def flag_file_present(self) -> bool:
        """The operator's KILL_SWITCH file, stat()ed at most every 250 ms (it is read on every request)."""
        now = time.monotonic()
        if now - self._flag_checked_at >= FLAG_CHECK_S:
            self._flag_present = self.flag_file.exists()
            self._flag_checked_at = now
        return self._flag_present

    def sources(self) -> list[str]:
        out = []
        if self.state["active"]:
            out.append("api")
        if self.env_forced:
            out.append("env")
        if self.flag_file_present():
            out.append("file")
        if self.load_error:
            out.append("unreadable_state_file")
        return out

    @property
    def active(self) -> bool:
        # The same four sources as sources(), without the list: every request asks.
        return bool(self.state["active"] or self.env_forced or self.flag_file_present() or self.load_error)

    def activate(self, *, reason: str | None, actor: str) -> dict:
        """On in memory at once, whatever the disk says: a safety action never waits for a write.
        If the write fails the answer says `persisted: false` (a restart would forget it) and the
        runtime retries the write (`retry_persist`) until it lands."""
        with self._lock:
            self.state.update(
                active=True,
                reason=(reason or "").strip() or DEFAULT_REASON,
                activated_at=_now_iso(),
                activated_by=actor,
                deactivated_at=None,
                deactivated_by=None,
            )
            self._persist()
        return self.snapshot()

    def deactivate(self, *, actor: str) -> dict:
        """Off only once the file says off: a failed write (OSError) leaves the switch on."""
        with self._lock:
            new = {**self.state, "active": False, "deactivated_at": _now_iso(), "deactivated_by": actor}
            try:
                write_json_atomic(self.path, new)
            except OSError as exc:
                self.write_health.failed(exc, self.path)
                raise
            self.write_health.ok()
            self.state, self.persisted, self.load_error = new, True, None
        return self.snapshot()

    def _persist(self) -> bool:
        try:
            write_json_atomic(self.path, self.state)
        except OSError as exc:
            self.persisted = False
            self.write_health.failed(exc, self.path)
            log.warning("KILL SWITCH IS ON IN MEMORY ONLY: %s could not be written (%s); a restart now would "
                        "forget it; retrying, or touch %s", self.path.name, exc.strerror or exc, self.flag_file)
            return False
        self.persisted, self.load_error = True, None
        self.write_health.ok()
        return True

    def retry_persist(self) -> bool:
        """Write a kill switch that is on in memory only (the runtime's maintenance loop calls this)."""
        with self._lock:
            if self.persisted:
                return True
            return self._persist()

    def snapshot(self, *, control_token_required: bool = True) -> dict:
        sources = self.sources()
        return {
            **self.state,
            "active": bool(sources),
            "sources": sources,
            "control_token_required": control_token_required,
            "persisted": self.persisted,
        }
