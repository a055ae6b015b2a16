"""Order ids are unique across processes and restarts, and sort by time."""

from __future__ import annotations

import subprocess
import sys

from runtime_api.ids import new_order_id


def test_ids_are_unique_and_monotonic_in_a_process():
    ids = [new_order_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(i.startswith("ord_") and len(i) == 30 for i in ids[:10])


def test_ids_from_separate_processes_never_collide():
    code = "from runtime_api.ids import new_order_id\nprint('\\n'.join(new_order_id() for _ in range(2000)))"
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() for _ in range(3)]
    merged = [i for out in outs for i in out] + [new_order_id() for _ in range(2000)]
    assert len(set(merged)) == len(merged) == 8000


def test_the_encoding_is_crockford_base32_most_significant_first():
    import random

    from runtime_api.ids import _CROCKFORD, _encode

    def by_digit(value: int, length: int) -> str:
        return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(length)))

    rng = random.Random(7)
    for _ in range(5000):
        value = rng.getrandbits(rng.choice([5, 48, 80, 128, 130]))
        for length in (1, 10, 16, 26):
            assert _encode(value, length) == by_digit(value, length)
    assert _encode(0, 26) == "0" * 26 and _encode(31, 1) == "Z"
