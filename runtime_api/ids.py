"""Identifiers that stay unique across restarts, processes and agents."""

from __future__ import annotations

import os
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # ten bits at a time: ids are minted per request
_lock = threading.Lock()
_last = [0, 0]


def _encode(value: int, length: int) -> str:
    """`value`'s low 5*length bits as Crockford base 32, most significant first."""
    out = []
    for _ in range((length + 1) // 2):
        out.append(_PAIRS[value & 1023])
        value >>= 10
    chars = "".join(reversed(out))
    return chars[len(chars) - length:]


def new_id(prefix: str = "") -> str:
    """A ULID-style id: 48-bit ms timestamp + 80 random bits, monotonic within a process."""
    with _lock:
        now = int(time.time() * 1000)
        if now <= _last[0]:
            now = _last[0]
            rand = _last[1] + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last[0], _last[1] = now, rand
    return prefix + _encode((now << 80) | (rand & ((1 << 80) - 1)), 26)


def new_order_id() -> str:
    return new_id("ord_")
