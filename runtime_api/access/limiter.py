"""Failed control-auth attempts per client, with an exponential backoff.

Only failures are counted and only failures are refused: a valid token is always served, so a
flood of wrong guesses from the operator's own address (every viewer behind a same-host proxy
looks like 127.0.0.1) can never lock the operator out. `burst` failures inside `window_s` block
that client's further failures for `base_block_s`, doubling on every repeat up to `max_block_s`;
a client that stays quiet for twice `max_block_s` starts over. An IPv6 client is its /64: one
host can hold a whole /64, so single addresses would let it rotate past the limiter.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

FAILURE_WINDOW_S = 60.0
FAILURE_BURST = 10
BASE_BLOCK_S = 60.0
MAX_BLOCK_S = 3600.0
MAX_CLIENTS = 10_000


def client_key(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if addr.version == 6:
        if addr.ipv4_mapped:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


@dataclass
class _Client:
    hits: deque = field(default_factory=deque)
    strikes: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


class FailureLimiter:
    def __init__(self, burst: int = FAILURE_BURST, window_s: float = FAILURE_WINDOW_S,
                 base_block_s: float = BASE_BLOCK_S, max_block_s: float = MAX_BLOCK_S, clock=time.monotonic):
        self.burst, self.window_s, self.clock = burst, window_s, clock
        self.base_block_s, self.max_block_s = base_block_s, max_block_s
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def retry_after(self, ip: str) -> float:
        """Seconds this client's failures stay refused (0: not blocked)."""
        client = self._clients.get(client_key(ip))
        return max(0.0, client.blocked_until - self.clock()) if client else 0.0

    def blocked(self, ip: str) -> bool:
        return self.retry_after(ip) > 0

    def failure(self, ip: str) -> float:
        """Count one failure; returns the block (seconds) it started, 0 when none."""
        now = self.clock()
        key = client_key(ip)
        client = self._clients.pop(key, None) or _Client()
        self._clients[key] = client  # most recent last: eviction drops the longest-quiet client
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        if client.last_failure and now - client.last_failure > 2 * self.max_block_s:
            client.strikes = 0
        client.last_failure = now
        if client.blocked_until > now:
            return 0.0
        client.hits.append(now)
        while client.hits and client.hits[0] < now - self.window_s:
            client.hits.popleft()
        if len(client.hits) < self.burst:
            return 0.0
        client.hits.clear()
        client.strikes += 1
        block = min(self.max_block_s, self.base_block_s * 2 ** (client.strikes - 1))
        client.blocked_until = now + block
        return block

    def clear(self) -> None:
        self._clients.clear()
