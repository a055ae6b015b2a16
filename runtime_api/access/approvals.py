"""The two-person rule: an admin action asked for by one holder runs only when another confirms.

With `CONTROL_TWO_PERSON=true`, an admin action (kill switch off, resets) that is not a dry run
is not carried out: it is stored as a pending request (the body minus any token) and answered
202 with its id. A *different* admin holder confirms it within `CONTROL_TWO_PERSON_WINDOW_S`;
only then does the action run, with the stored body. Requests live in memory: a restart drops
them (they were not carried out), which is the safe direction.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import ApiError
from ..ids import new_id

MAX_PENDING = 64


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class PendingAction:
    id: str
    action: str
    target: str | None
    body: dict
    handler: Callable[..., Awaitable[Any]] = field(repr=False)
    requested_by: str
    requested_at: float
    expires_at: float

    def view(self) -> dict:
        return {
            "approval_id": self.id, "action": self.action, "target": self.target,
            "requested_by": self.requested_by, "requested_at": _iso(self.requested_at),
            "expires_at": _iso(self.expires_at), "body": self.body,
        }


class Approvals:
    def __init__(self, window_s: float, clock=time.time):
        self.window_s = window_s
        self._clock = clock
        self._pending: dict[str, PendingAction] = {}

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[key]

    def request(self, *, action: str, target: str | None, body: dict, handler, holder: str) -> PendingAction:
        self._expire()
        if len(self._pending) >= MAX_PENDING:
            raise ApiError(429, "too_many_pending_approvals", f"{MAX_PENDING} requests already wait for approval")
        now = self._clock()
        clean = {k: v for k, v in body.items() if k != "control_token"}
        pending = PendingAction(new_id("apr_"), action, target, clean, handler, holder, now, now + self.window_s)
        self._pending[pending.id] = pending
        return pending

    def pending(self) -> list[PendingAction]:
        self._expire()
        return sorted(self._pending.values(), key=lambda p: p.requested_at)

    def take(self, approval_id: str, holder: str) -> PendingAction:
        """The request `holder` confirms, removed from the list (single use)."""
        self._expire()
        pending = self._pending.get(approval_id)
        if pending is None:
            raise ApiError(404, "approval_not_found", "no pending request with that id (approved, cancelled or expired)")
        if pending.requested_by == holder:
            raise ApiError(409, "approval_needs_second_person", f"{holder} made this request; a different admin must approve it")
        return self._pending.pop(approval_id)

    def cancel(self, approval_id: str) -> PendingAction:
        self._expire()
        pending = self._pending.pop(approval_id, None)
        if pending is None:
            raise ApiError(404, "approval_not_found", "no pending request with that id (approved, cancelled or expired)")
        return pending
