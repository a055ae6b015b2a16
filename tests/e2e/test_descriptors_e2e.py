"""Descriptor and connection exhaustion against a real server with a small RLIMIT_NOFILE.

The server gets 256 descriptors (cheap to exhaust); the test opens far more idle connections and
non-reading viewers than that, and the operator, /health and the decision log keep working.
"""

from __future__ import annotations

import configparser
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from .server import TOKEN, RuntimeProcess

REPO = Path(__file__).resolve().parents[2]
NOFILE = 256
FAST_REPLAY = {"REPLAY_SPEED": "600", "AGENT_DECISION_EVERY_BARS": "5", "ONLYTRADE_SEED_AGENTS": "demo_momentum,t_001",
               "HTTP_HEADER_TIMEOUT_S": "30"}


def idle_connection(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return s


def non_reading_viewer(port: int, path: str) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    return s


def saved_decisions(root: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (root / "data" / "decisions").rglob("*.jsonl"))


def closed_by_server(s: socket.socket, within_s: float) -> bool:
    """Drain the socket: True when the server ended the connection (EOF or reset) in time."""
    s.settimeout(0.5)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if not s.recv(1 << 16):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            continue
    return False


def test_descriptor_flood_leaves_health_the_operator_and_the_decision_log_working(root):
    sockets: list[socket.socket] = []
    with RuntimeProcess(root, FAST_REPLAY, nofile=NOFILE) as server, server.client(timeout=10) as c:
        log = server.read_log()
        assert f"descriptors: limit={NOFILE} reserve=64 connections<=192 room_viewers<=96 market_viewers<=38" in log
        try:
            before = saved_decisions(root)
            for _ in range(2 * NOFILE):  # twice the whole descriptor limit in idle connections...
                sockets.append(idle_connection(server.port))
            viewer_codes = []
            for i in range(150):  # ...and more non-reading viewers than the viewer cap
                v = non_reading_viewer(server.port, "/api/rooms/t_001/events" if i % 2 else "/api/market/stream?symbols=600519.SH")
                sockets.append(v)
            latencies = []
            for i in range(10):
                t0 = time.monotonic()
                h = c.get("/health")
                latencies.append(time.monotonic() - t0)
                assert h.status_code == 200
                action = "pause" if i % 2 == 0 else "resume"
                r = c.post("/api/agent/runtime/control", json={"action": action}, headers={"x-control-token": TOKEN})
                assert r.status_code == 200, r.text
                # A fresh connection each time (the worst case): the guard makes room by closing idle ones.
                with httpx.Client(base_url=server.base, timeout=10) as fresh:
                    assert fresh.get("/health").status_code == 200
            on = c.post("/api/agent/runtime/kill-switch", json={"action": "activate", "reason": "flood"}, headers={"x-control-token": TOKEN})
            off = c.post("/api/agent/runtime/kill-switch", json={"action": "deactivate"}, headers={"x-control-token": TOKEN})
            assert on.status_code == off.status_code == 200
            c.post("/api/agent/runtime/control", json={"action": "resume"}, headers={"x-control-token": TOKEN})
            c.post("/api/replay/runtime/control", json={"action": "resume"}, headers={"x-control-token": TOKEN})
            deadline = time.monotonic() + 20
            while saved_decisions(root) <= before and time.monotonic() < deadline:
                time.sleep(0.2)
            assert saved_decisions(root) > before, "no decision saved under the flood"
            # The market stream's cap (20 % of the connection cap) is full of non-readers: a newcomer is told so.
            with httpx.Client(base_url=server.base, timeout=10) as fresh:
                extra = fresh.get("/api/market/stream")
            assert extra.status_code == 429 and extra.json()["error"] == "too_many_subscribers"
            health = c.get("/health").json()
            conns = health["connections"]
            assert conns["evicted_idle"] > 0 and conns["open"] <= conns["max"] == 192
            assert conns["descriptors_open"] < NOFILE - 32, conns
            assert max(latencies) < 5.0, latencies
        finally:
            for s in sockets:
                s.close()
        log = server.read_log()
    assert "Too many open files" not in log and "EMFILE" not in log
    assert "connection cap 192 reached" in log


def test_a_viewer_that_never_reads_is_dropped(root):
    env = {"REPLAY_SPEED": "1000", "MARKET_STREAM_POLL_MS": "300", "HTTP_SEND_BUFFER_BYTES": "8192", "HTTP_SEND_TIMEOUT_S": "2"}
    with RuntimeProcess(root, env) as server, server.client() as c:
        stuck = non_reading_viewer(server.port, "/api/market/stream")
        reader = non_reading_viewer(server.port, "/api/market/stream")  # the same stream, read: must stay
        try:
            reader.settimeout(0.2)
            got = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "dropped a client that read nothing" not in server.read_log():
                try:
                    got += len(reader.recv(1 << 16))
                except TimeoutError:
                    pass
            assert "dropped a client that read nothing" in server.read_log(), f"reader got {got} bytes"
            assert closed_by_server(stuck, 5)
            reader.settimeout(5)
            assert reader.recv(1 << 16)  # the reading viewer was not touched
        finally:
            stuck.close()
            reader.close()
        assert c.get("/health").json()["connections"]["stalled_writers_dropped"] == 1


def test_an_unfinished_request_head_or_body_is_not_held(root):
    with RuntimeProcess(root, {"HTTP_HEADER_TIMEOUT_S": "1", "HTTP_BODY_TIMEOUT_S": "2"}) as server, server.client() as c:
        head = socket.create_connection(("127.0.0.1", server.port))
        body = socket.create_connection(("127.0.0.1", server.port))
        try:
            head.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finished
            body.sendall(b"POST /api/agent/runtime/control HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"x-control-token: " + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"action\"")
            t0 = time.monotonic()
            assert closed_by_server(head, 10) and closed_by_server(body, 10)
            assert time.monotonic() - t0 < 8
        finally:
            head.close()
            body.close()
        stats = c.get("/health").json()["connections"]
        assert stats["header_timeouts"] >= 1 and stats["body_timeouts"] >= 1
        deadline = time.monotonic() + 5
        while True:  # the gate audits the cut-off call once its handler has unwound
            audit = c.get("/api/ops/audit", headers={"x-control-token": TOKEN}).json()["data"]["records"]
            calls = [(r["action"], r.get("error")) for r in audit if r["action"] != "ops.audit.read"]
            if calls or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert calls == [("agent.runtime.control.none", "request_body_incomplete")]  # audited; nothing was acted on


def test_a_manifest_rescan_that_hits_emfile_keeps_the_last_good_manifests(root):
    script = textwrap.dedent(f"""
        import logging, os, resource, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stdout)
        from pathlib import Path
        from runtime_api.registry import AgentRegistry as Registry
        reg = Registry(Path({str(root / 'agents')!r}), Path({str(root / 'registry.json')!r}))
        good = len(reg.available())
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        held = []
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as exc:
            print("exhausted", exc.errno)
        changed = reg.rescan()
        print("kept", good, len(reg.available()), changed)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert "exhausted 24" in out.stdout, out
    good = int(out.stdout.split("kept ")[1].split()[0])
    assert good > 0 and f"kept {good} {good} False" in out.stdout, out
    assert f"manifest rescan failed (agents/: Too many open files); keeping the last good {good} manifests" in out.stdout, out


def test_the_unit_raises_the_descriptor_limit():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(REPO / "systemd" / "onlytrade-runtime.service")
    assert int(unit["Service"]["LimitNOFILE"]) >= 16384


def test_a_slow_reader_of_a_big_response_is_not_dropped(root):
    env = {"HTTP_SEND_BUFFER_BYTES": "8192", "HTTP_SEND_TIMEOUT_S": "2", "ONLYTRADE_SEED_AGENTS": "demo_momentum"}
    with RuntimeProcess(root, env) as server:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", server.port))
        try:
            s.sendall(b"GET /api/agent/market-context?trader_id=demo_momentum&intraday_limit=2000&daily_limit=2000 HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
            got = b""
            started = time.monotonic()
            while True:  # about 25 KB/s: far slower than the server writes, but always reading
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
                time.sleep(0.15)
        finally:
            s.close()
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        assert len(body) > 100_000 and time.monotonic() - started > 3  # longer than the send timeout
        assert body.rstrip().endswith(b"}")
        with server.client() as c:
            assert c.get("/health").json()["connections"]["stalled_writers_dropped"] == 0
