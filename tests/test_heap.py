"""runtime_api/observability/heap.py: what survives a full collection is frozen; a thaw gives it back once."""

from __future__ import annotations

import gc

import pytest

from runtime_api.observability.heap import HeapPolicy


@pytest.fixture
def policy():
    heap = HeapPolicy(thaw_every_s=0)
    heap.install()
    try:
        yield heap
    finally:
        heap.uninstall()


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the collector frees it


def test_install_freezes_what_exists_and_survivors_of_full_collections(policy):
    assert policy.installed and gc.get_freeze_count() > 0
    assert gc.get_threshold()[2] == 1
    kept = [Node() for _ in range(200)]
    before = gc.get_freeze_count()
    gc.collect()
    assert policy.full_collections >= 1
    assert gc.get_freeze_count() >= before + 200  # the live nodes now sit out of the walk
    del kept


def test_garbage_cycles_are_collected_not_frozen(policy):
    for _ in range(500):
        Node()  # unreachable at once
    before = gc.get_freeze_count()
    collected = gc.collect()
    assert collected >= 500
    assert gc.get_freeze_count() - before < 500


def test_a_thaw_collects_cycles_that_formed_among_frozen_objects(policy):
    holders = [[Node()] for _ in range(300)]
    gc.collect()  # holders and their nodes are frozen now
    holders.clear()  # the nodes' cycles are unreachable, but frozen: no collection sees them
    assert gc.collect() < 300
    report = policy.thaw()
    assert report["collected"] >= 300 and report["took_ms"] >= 0
    assert policy.thaws == 1 and policy.last_thaw == report
    assert policy.status()["frozen_objects"] == gc.get_freeze_count() > 0


def test_pauses_are_measured(policy):
    gc.collect()
    status = policy.status()
    assert status["max_pause_ms"] > 0 and status["full_collections"] >= 1
    assert set(status) >= {"installed", "frozen_objects", "pauses_over_20ms", "thaw_every_s", "last_thaw"}


def test_uninstall_restores_the_defaults():
    heap = HeapPolicy(thaw_every_s=0)
    heap.install()
    heap.uninstall()
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0 and not heap.installed


def test_the_frozen_count_is_walked_at_most_once_per_ttl(policy, monkeypatch):
    """gc.get_freeze_count() walks the frozen list: status (read by every runtime-status build and
    scrape) counts it once per FREEZE_COUNT_TTL_S, and afresh after a thaw."""
    import runtime_api.observability.heap as heap

    calls = []
    real = gc.get_freeze_count
    monkeypatch.setattr(heap.gc, "get_freeze_count", lambda: calls.append(1) or real())
    now = [5000.0]
    monkeypatch.setattr(heap.time, "monotonic", lambda: now[0])
    first = policy.status()["frozen_objects"]
    for _ in range(20):
        assert policy.status()["frozen_objects"] == first
    assert len(calls) == 1
    now[0] += heap.FREEZE_COUNT_TTL_S
    policy.status()
    assert len(calls) == 2
    report = policy.thaw()
    assert policy.status()["frozen_objects"] == report["frozen_after"]
