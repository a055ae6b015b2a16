"""What the control audit may take from a caller, and how it counts the ones it rejects.

`actor` and `x-request-id` are claims: bounded, reduced to a safe charset and, from a caller
without a valid token, recorded only as `claimed_*` next to a server-made request id. Rejected
calls (no or wrong token, limiter) are counted per client per minute and written as one line
per (client, minute), so a flood costs memory for a counter, not an fsync per request.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

MAX_CLAIM = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+=-]")
MAX_BUCKETS = 10_000
MAX_ACTIONS_PER_BUCKET = 8
OVERFLOW_CLIENT = "(other clients)"


def claim(value: object) -> str | None:
    """A caller-supplied identifier cut to a safe charset and length; None when nothing is left."""
    if not isinstance(value, str):
        return None
    cleaned = _UNSAFE.sub("", value[: MAX_CLAIM * 4])[:MAX_CLAIM]
    return cleaned or None


@dataclass
class _Bucket:
    minute: int
    ip: str
    count: int = 0
    first_ts: str = ""
    last_ts: str = ""
    actions: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


class RejectionCounter:
    """Rejected control calls as counts per (client, UTC minute)."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._buckets: dict[tuple[str, int], _Bucket] = {}

    def add(self, ip: str, action: str, error: str, ts: str) -> bool:
        """Count one rejection; True when it opened this client's bucket for the minute (log it once)."""
        minute = int(self._clock() // 60)
        key = (ip, minute)
        bucket = self._buckets.get(key)
        opened = bucket is None
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                key = (OVERFLOW_CLIENT, minute)
                bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(minute=minute, ip=key[0], first_ts=ts)
        bucket.count += 1
        bucket.last_ts = ts
        if action in bucket.actions or len(bucket.actions) < MAX_ACTIONS_PER_BUCKET:
            bucket.actions[action] = bucket.actions.get(action, 0) + 1
        bucket.errors[error] = bucket.errors.get(error, 0) + 1
        return opened

    def take(self, *, all_minutes: bool = False) -> list[dict]:
        """Audit lines for every finished minute (or every bucket), removed from the counter."""
        current = int(self._clock() // 60)
        done = [k for k, b in self._buckets.items() if all_minutes or b.minute < current]
        lines = []
        for key in sorted(done, key=lambda k: (k[1], k[0])):
            b = self._buckets.pop(key)
            lines.append({
                "ts": b.last_ts, "first_ts": b.first_ts,
                "minute": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(b.minute * 60)),
                "action": "control.rejected", "result": "unauthorized", "ip": b.ip, "holder": None,
                "count": b.count, "actions": b.actions, "errors": b.errors,
            })
        return lines

    def clients(self) -> int:
        """Clients with unwritten counts (this minute's, and the last one's until it is written)."""
        return len(self._buckets)
