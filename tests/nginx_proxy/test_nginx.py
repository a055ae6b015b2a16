"""deploy/nginx/onlytrade.conf in Debian's real nginx, in front of a real runtime process."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest
from e2e.server import TOKEN, RuntimeProcess
from streaming.helpers import parse_event

from .nginx import REPO, WEB_DIST, Nginx, nginx_binary

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed (make test installs Debian's nginx)")


def data(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("nginx-root")
    shutil.copytree(REPO / "agents", root / "agents")
    shutil.copytree(REPO / "data" / "replay", root / "data" / "replay")
    runtime = RuntimeProcess(root, env={"HTTP_CACHE_LIST_MAX_AGE_S": "1", "REPLAY_SPEED": "0.1"}).start()
    try:
        runtime.control("/api/agents/t_001/register")
        runtime.control("/api/agents/t_001/start")
        with Nginx(tmp_path_factory.mktemp("nginx"), runtime=f"127.0.0.1:{runtime.port}") as nginx:
            yield runtime, nginx
    finally:
        runtime.stop()


def upstream_hits(nginx: Nginx, uri: str, since: int) -> list[str]:
    return [line for line in nginx.access_lines()[since:] if f" {uri} " in line and "upstream=-" not in line]


def test_a_burst_of_identical_reads_reaches_the_runtime_once_per_max_age(stack):
    runtime, nginx = stack
    mark = len(nginx.access_lines())
    stop = time.monotonic() + 3.2
    answers: list[int] = []

    def hammer():
        with httpx.Client(base_url=nginx.base, timeout=5) as c:
            while time.monotonic() < stop:
                answers.append(c.get("/api/traders").status_code)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hits = upstream_hits(nginx, "/api/traders", mark)
    assert len(answers) > 100 and set(answers) == {200}
    # max-age 1 s over ~3.2 s: the runtime sees about one request a second (never one per viewer)
    assert 2 <= len(hits) <= 6, hits
    # prefixed and unprefixed share the entry; the runtime's Cache-Control reaches the browser
    r = httpx.get(nginx.base + "/onlytrade/api/traders")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=1" and r.headers["etag"]


def test_sse_events_arrive_unbuffered(stack):
    runtime, nginx = stack
    with httpx.Client(base_url=nginx.base, timeout=httpx.Timeout(10, read=30)) as c:
        with c.stream("GET", "/onlytrade/api/rooms/t_001/events") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            chunks = resp.iter_raw()
            started = time.monotonic()
            first = next(chunks)  # 14 bytes: a buffering proxy would hold them back
            assert first.startswith(b": connected"), first
            assert time.monotonic() - started < 3
            buf = b""
            while b"event: stream_packet" not in buf:
                buf += next(chunks)
            step = c.post("/api/agent/runtime/control", json={"action": "step"}, headers={"x-control-token": TOKEN})
            assert step.status_code == 200
            sent = time.monotonic()
            buf = b""
            while b"event: decision" not in buf:
                buf += next(chunks)
            assert time.monotonic() - sent < 5
            block = buf[buf.index(b"id: ") if b"id: " in buf else 0:]
            event = parse_event(block[: block.index(b"\n\n", block.index(b"event: decision")) + 2])
            assert event["event"] == "decision" and event["data"]["room_id"] == "t_001"


def test_control_calls_are_never_served_from_cache(stack):
    runtime, nginx = stack
    headers = {"x-control-token": TOKEN, "x-forwarded-for": "203.0.113.9"}
    mark = len(nginx.access_lines())
    with httpx.Client(base_url=nginx.base, timeout=30) as c:
        cycles = [data(c.post("/api/agent/runtime/control", json={"action": "step"}, headers=headers))["metrics"]["totalCycles"]
                  for _ in range(3)]
        assert cycles == sorted(set(cycles)) and len(cycles) == 3  # three real cycles, three answers
        audits = [c.get("/api/ops/audit?limit=5", headers=headers) for _ in range(2)]
        denied = [c.get("/api/ops/audit?limit=5") for _ in range(2)]
        # a public read with credentials bypasses the cache
        public = c.get("/api/traders", headers={"x-control-token": TOKEN})
    for r in audits:
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert [r.status_code for r in denied] == [401, 401]
    assert public.headers["x-cache-status"] == "BYPASS"
    lines = nginx.access_lines()[mark:]
    post_lines = [line for line in lines if line.startswith("POST /api/agent/runtime/control")]
    assert len(post_lines) == 3 and all("upstream=127.0.0.1" in line and "cache=HIT" not in line for line in post_lines)
    audit_lines = [line for line in lines if "/api/ops/audit" in line]
    assert len(audit_lines) == 4 and all("upstream=127.0.0.1" in line for line in audit_lines)
    # the runtime saw nginx's view of the client, not the address the client claimed
    entries = data(httpx.get(runtime.base + "/api/ops/audit?limit=3", headers={"x-control-token": TOKEN}))
    ips = {e.get("ip") for e in entries["records"]}
    assert "127.0.0.1" in ips and "203.0.113.9" not in ips


@pytest.mark.skipif(not WEB_DIST.exists(), reason="the real client build is not in ../shared")
def test_the_web_client_rules(stack):
    runtime, nginx = stack
    with httpx.Client(base_url=nginx.base, timeout=5) as c:
        for page in ("/onlytrade/lobby", "/onlytrade/room?trader=t_001", "/room?trader=t_001"):
            r = c.get(page)
            assert r.status_code == 200 and b'<div id="root"' in r.content, page
        asset = next((WEB_DIST / "assets").glob("*.js")).name
        assert c.get(f"/onlytrade/assets/{asset}").status_code == 200
        assert data(c.get("/onlytrade/api/traders"))
