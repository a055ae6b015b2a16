"""The viewer bus end to end: a real runtime publishing to a real redis-server, two real edges."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from runtime_api.viewer_bus.reads import edge_reads
from e2e.server import TOKEN, RuntimeProcess
from nginx_proxy.nginx import Nginx, nginx_binary

from .redis_server import EdgeProcess, RedisServer, redis_binary
from .sse_reader import SseReader

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(redis_binary() is None, reason="redis-server not installed (make test installs it)")


def data(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def wait_for(check, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout}s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("bus")
    root = base / "root"
    shutil.copytree(REPO / "agents", root / "agents")
    shutil.copytree(REPO / "data" / "replay", root / "data" / "replay")
    redis = RedisServer(base / "redis").start()
    runtime = RuntimeProcess(root, env={"VIEWER_BUS_URL": redis.url, "REPLAY_SPEED": "0.1", "EDGE_RECONNECT_MS": "200"})
    edges: list[EdgeProcess] = []
    try:
        runtime.start()
        data(runtime.control("/api/agents/t_001/register"))
        data(runtime.control("/api/agents/t_001/start"))
        data(runtime.control("/api/agent/runtime/control", {"action": "pause"}))
        for name in ("edge-a", "edge-b"):
            edges.append(EdgeProcess(base / name, redis.url, name).start())
        for edge in edges:
            wait_for(lambda: httpx.get(edge.base + "/api/rooms/t_001/stream-packet").status_code == 200, what="packet on edge")
        yield redis, runtime, edges
    finally:
        for edge in edges:
            edge.stop()
        runtime.stop()
        redis.stop()


def step(runtime) -> None:
    data(runtime.control("/api/agent/runtime/control", {"action": "step"}))


def test_runtime_events_reach_viewers_on_two_edges(stack):
    redis, runtime, (a, b) = stack
    viewers = [SseReader(edge.base + "/onlytrade/api/rooms/t_001/events") for edge in (a, b)]
    try:
        for v, edge in zip(viewers, (a, b), strict=True):
            packet = v.next("stream_packet")["data"]
            assert packet["room_id"] == "t_001" and packet["viewer_bus"]["connected"] is True
            assert packet["viewer_bus"]["edge"] == edge.env["EDGE_NAME"]
        step(runtime)
        got = [v.next("decision") for v in viewers]
        assert got[0]["id"] == got[1]["id"] and "-" in got[0]["id"]  # the bus's id, the same on every edge
        assert got[0]["data"]["room_id"] == "t_001" and got[0]["data"] == got[1]["data"]
        # the packet that follows the decision carries it
        after = viewers[0].next("stream_packet", where=lambda e: e.get("id"))
        assert after["data"]["decision_latest"]
    finally:
        for v in viewers:
            v.close()


def test_last_event_id_resumes_on_another_edge_without_gaps(stack):
    redis, runtime, (a, b) = stack
    first = SseReader(a.base + "/api/rooms/t_001/events")
    first.next("stream_packet")
    step(runtime)
    seen = first.next("decision")["id"]
    first.close()
    for _ in range(2):  # decisions the viewer misses while it reconnects
        step(runtime)
    wait_for(lambda: b.health()["viewer_bus"]["history"] and True, what="edge b history")
    time.sleep(0.5)
    resumed = SseReader(b.base + "/api/rooms/t_001/events", headers={"last-event-id": seen})
    try:
        missed = [resumed.next("decision"), resumed.next("decision")]
        ids = [m["id"] for m in missed]
        key = lambda i: tuple(int(x) for x in i.split("-"))  # noqa: E731
        assert key(seen) < key(ids[0]) < key(ids[1])
        others = [e for e in resumed.drain() if e.get("event") == "gap"]
        assert not others
        step(runtime)
        live = resumed.next("decision")
        assert key(live["id"]) > key(ids[1])
    finally:
        resumed.close()


def test_edges_serve_reads_and_nothing_else(stack):
    redis, runtime, (a, b) = stack
    wait_for(lambda: httpx.get(a.base + "/api/competition").status_code == 200, what="competition on edge")
    mine = httpx.get(runtime.base + "/api/competition")
    edge = httpx.get(a.base + "/api/competition")
    assert edge.headers["etag"] and edge.headers["cache-control"] == mine.headers["cache-control"]
    assert edge.json()["data"]["traders"][0]["trader_id"] == "t_001"
    # A large read is published as the runtime's identity body under that body's ETag (never the
    # runtime's gzip representation's), whatever encoding the edge's own client then asks for.
    sizes = []
    for path, query in edge_reads(["t_001"]):
        published = httpx.get(a.base + path, params=query, headers={"accept-encoding": "identity"})
        if published.status_code != 200:
            continue
        assert not published.headers["etag"].endswith('-gz"'), path
        published.json()  # the body itself parses: never gzip bytes under an identity answer
        sizes.append(len(published.content))
    assert max(sizes) > 1024  # at least one read the runtime would have compressed
    # Right after start the runtime's state still moves (first rounds): revalidate once the edge
    # holds the runtime's current answer, as a viewer would after the next publish.
    wait_for(lambda: httpx.get(a.base + "/api/competition").headers.get("etag")
             == httpx.get(runtime.base + "/api/competition", headers={"accept-encoding": "identity"}).headers.get("etag"),
             what="the edge holding the runtime's current competition")
    edge = httpx.get(a.base + "/api/competition")
    assert httpx.get(a.base + "/api/competition", headers={"if-none-match": edge.headers["etag"]}).status_code == 304
    control = httpx.post(a.base + "/api/agent/runtime/control", json={"action": "step"}, headers={"x-control-token": "x" * 30})
    assert control.status_code in (404, 405)
    audit = httpx.get(a.base + "/api/ops/audit")
    assert audit.status_code == 404 and audit.json()["error"] == "not_on_edge"
    assert httpx.get(a.base + "/").status_code == 200 and httpx.get(a.base + "/room/t_001").status_code == 200
    assert httpx.get(a.base + "/api/rooms/nobody/stream-packet").status_code == 404


def test_a_redis_restart_is_reported_never_silent(stack):
    redis, runtime, (a, b) = stack
    viewers = [SseReader(edge.base + "/api/rooms/t_001/events") for edge in (a, b)]
    try:
        for v in viewers:
            v.next("stream_packet")
        redis.stop()
        for v in viewers:
            lost = v.next("stream_packet", where=lambda e: e["data"]["viewer_bus"]["connected"] is False)
            assert lost["data"]["viewer_bus"]["disconnected_since_ms"]
        for edge in (a, b):
            health = edge.health()
            assert health["ok"] is False and health["viewer_bus"]["connected"] is False
            assert httpx.get(edge.base + "/health/ready").status_code == 503
            pkt = data(httpx.get(edge.base + "/api/rooms/t_001/stream-packet"))
            assert pkt["viewer_bus"]["connected"] is False
        step(runtime)  # a decision while the bus is down: the runtime keeps it queued
        redis.start()
        for v in viewers:
            gap = v.next("gap", timeout=15)
            assert gap["data"]["reason"] == "bus_restarted" and gap["data"]["last_event_id"]
        for edge in (a, b):
            wait_for(lambda: edge.health()["ok"], what="edge reconnected")
        # the decision queued during the outage arrives after the gap, and new ones follow
        for v in viewers:
            v.next("decision", timeout=15)
        step(runtime)
        ids = [v.next("decision", timeout=15)["id"] for v in viewers]
        assert ids[0] == ids[1]
        status = data(httpx.get(runtime.base + "/api/agent/runtime/status"))["viewer_bus"]
        assert status["enabled"] and status["connected"]
    finally:
        for v in viewers:
            v.close()


@pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed (make test installs it)")
def test_nginx_sends_room_streams_to_the_edges_and_control_to_the_runtime(stack, tmp_path):
    redis, runtime, (a, b) = stack
    with Nginx(tmp_path / "nginx", runtime=f"127.0.0.1:{runtime.port}", viewers=[f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]) as nginx:
        viewer = SseReader(nginx.base + "/onlytrade/api/rooms/t_001/events")
        try:
            packet = viewer.next("stream_packet")["data"]
            assert packet["viewer_bus"]["edge"] in ("edge-a", "edge-b")
            step = httpx.post(nginx.base + "/api/agent/runtime/control", json={"action": "step"},
                              headers={"x-control-token": TOKEN}, timeout=30)
            assert step.status_code == 200  # reached the runtime: edges have no control routes
            assert "-" in viewer.next("decision")["id"]
        finally:
            viewer.close()
        served = httpx.get(nginx.base + "/api/rooms/t_001/stream-packet")
        assert served.status_code == 200 and served.json()["data"]["viewer_bus"]["connected"] is True
