"""Whether state writes reach the disk: per kind of state, the last failure (errno, path) and recovery.

A full disk (ENOSPC), a quota (EDQUOT) or a read-only remount must not be silent: the stores report
every write here, runtime status shows it, `/health/ready` and preflight fail while a kind is failing,
and a control call that could not persist answers `state_write_failed` (507 for a full disk) instead
of a bare 500.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path

from ..errors import ApiError

log = logging.getLogger("onlytrade.state")

_FULL = {errno.ENOSPC, errno.EDQUOT}


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, "EIO") if exc.errno else type(exc).__name__


def _where(exc: OSError, path: Path | str | None) -> str:
    """The file name only: public output never carries absolute paths."""
    target = exc.filename or path
    return os.path.basename(str(target)) if target else ""


class WriteHealth:
    """One kind of state (snapshots, kill switch, pause): consecutive failures since the last success."""

    def __init__(self, kind: str):
        self.kind = kind
        self.consecutive_failures = 0
        self.total_failures = 0
        self.last_error: dict | None = None
        self.last_ok_ms: int | None = None
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    def ok(self) -> None:
        with self._lock:
            recovered = self.consecutive_failures
            self.consecutive_failures = 0
            self.last_ok_ms = int(time.time() * 1000)
        if recovered:
            log.warning("state writes recovered kind=%s after %d failed writes", self.kind, recovered)

    def failed(self, exc: OSError, path: Path | str | None = None) -> None:
        with self._lock:
            self.consecutive_failures += 1
            self.total_failures += 1
            self.last_error = {
                "errno": _errno_name(exc), "message": exc.strerror or str(exc), "file": _where(exc, path),
                "ts_ms": int(time.time() * 1000),
            }
        log.error("state write failed kind=%s errno=%s file=%s (%d in a row)", self.kind,
                  self.last_error["errno"], self.last_error["file"], self.consecutive_failures)

    def status(self) -> dict:
        return {"ok": not self.failing, "consecutive_failures": self.consecutive_failures,
                "total_failures": self.total_failures, "last_error": self.last_error, "last_ok_ms": self.last_ok_ms}


def state_write_failed(exc: OSError, what: str) -> ApiError:
    """The answer to a control call whose state could not be written (507 for a full disk).
    `what` tells the operator what did and did not change."""
    status = 507 if exc.errno in _FULL else 503
    return ApiError(status, "state_write_failed",
                    f"{what}: could not write {_where(exc, None) or 'state'} ({_errno_name(exc)}: {exc.strerror or exc})")


def state_write_problems(memory, kill_switch, runtime) -> list[str]:
    """Why state writes are not ok (empty when they are): what `/health` and readiness show, built
    without the per-kind detail of `state_writes_view` since probes ask for it thousands of times a second."""
    problems = []
    if memory.write_health.failing:
        problems.append("snapshot_saves_failing")
    if runtime.replay_position_write_health.failing:
        problems.append("replay_position_saves_failing")
    if not kill_switch.persisted:
        problems.append("kill_switch_not_persisted")
    if not runtime.pause_persisted:
        problems.append("pause_not_persisted")
    return problems


def state_writes_view(memory, kill_switch, runtime) -> dict:
    """Runtime status' `state_writes`: `ok` is false while snapshot or replay-position saves fail (no
    cycle runs then) or a kill switch or pause holds in memory only (a restart would forget it)."""
    problems = state_write_problems(memory, kill_switch, runtime)
    return {"ok": not problems, "problems": problems, "snapshots": memory.write_health.status(),
            "replay_position": runtime.replay_position_write_health.status(),
            "kill_switch": {**kill_switch.write_health.status(), "persisted": kill_switch.persisted},
            "pause": {**runtime.pause_write_health.status(), "persisted": runtime.pause_persisted}}
