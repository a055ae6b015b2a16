"""Flood the runtime with idle connections and non-reading SSE viewers; print /health and operator latency.

    python bench/descriptor_flood.py                          # 1024 descriptors (the systemd default), ~1 min
    python bench/descriptor_flood.py --nofile 65536 --idle 3000 --viewers 2000
    python bench/descriptor_flood.py --code /tmp/before       # the same load against another checkout

The server runs `python -m runtime_api` (replay, every agent cycling) with RLIMIT_NOFILE set to
`--nofile`. Phases: quiet, then flooded (`--idle` connections that never send a byte and
`--viewers` room/market SSE viewers that never read, opened as fast as the server accepts
them), each probed every 0.25 s for `--seconds` with a *fresh* connection per probe (the
operator's CLI opens one per call): GET /health, and the operator's POST pause/resume with the
token. Printed per phase: answered/sent, p50 and max latency, decision cycles completed and
failed, the server's open descriptors, and how often its log says EMFILE. Loopback only; exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TOKEN, free_port, make_root, runtime_proc  # noqa: E402


def probe(base: str, path: str, *, body: dict | None = None, timeout: float = 5.0) -> float | None:
    """Seconds to a 2xx on a fresh connection, or None (error, timeout, non-2xx)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json", "x-control-token": TOKEN} if body is not None else {}
    req = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if body is not None else "GET")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return time.perf_counter() - t0 if 200 <= r.status < 300 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def cycles(base: str) -> tuple[int, int] | None:
    try:
        with urllib.request.urlopen(base + "/api/agent/runtime/status", timeout=5) as r:
            m = json.loads(r.read())["data"]["metrics"]
            return m.get("successfulCycles", 0), m.get("failedCycles", 0)
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def flood(port: int, idle: int, viewers: int, rooms: list[str]) -> tuple[list[socket.socket], int, int]:
    held: list[socket.socket] = []
    ok_idle = ok_viewers = 0
    for _ in range(idle):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            held.append(s)
            ok_idle += 1
        except OSError:
            pass
    for i in range(viewers):
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(2)
            s.connect(("127.0.0.1", port))
            path = f"/api/rooms/{rooms[i % len(rooms)]}/events" if i % 3 else "/api/market/stream"
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
            held.append(s)
            ok_viewers += 1
        except OSError:
            pass
    return held, ok_idle, ok_viewers


def phase(base: str, pid: int, seconds: float) -> dict:
    health, operator = [], []
    start = cycles(base)
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        health.append(probe(base, "/health"))
        operator.append(probe(base, "/api/agent/runtime/control", body={"action": "resume" if i % 2 else "pause"}))
        i += 1
        time.sleep(0.25)
    probe(base, "/api/agent/runtime/control", body={"action": "resume"})
    end = cycles(base)
    return {"health": health, "operator": operator, "start": start, "end": end, "fds": open_fds(pid)}


def summary(samples: list[float | None]) -> str:
    ok = [s for s in samples if s is not None]
    if not ok:
        return f"0/{len(samples)} answered"
    return (f"{len(ok)}/{len(samples)} answered, p50 {statistics.median(ok) * 1000:.0f} ms, "
            f"max {max(ok) * 1000:.0f} ms")


def start_with_limit(server, nofile: int) -> None:
    """`_common.Proc.start` with the server's RLIMIT_NOFILE set to `nofile`."""
    import subprocess

    server.log = open(server.log_path, "ab")
    server.started_at = time.perf_counter()
    server.proc = subprocess.Popen(server.argv, cwd=server.cwd, env=server.env, stdout=server.log, stderr=subprocess.STDOUT,
                                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nofile", type=int, default=1024, help="RLIMIT_NOFILE of the server (default 1024, systemd's default)")
    ap.add_argument("--idle", type=int, default=1500, help="idle connections to open")
    ap.add_argument("--viewers", type=int, default=1200, help="non-reading SSE viewers to open")
    ap.add_argument("--seconds", type=float, default=15.0, help="probe time per phase")
    ap.add_argument("--code", type=Path, default=None, help="run the runtime from this checkout (PYTHONPATH)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + args.viewers + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))

    root = make_root("onlytrade-fdflood-")
    port = free_port()
    env = {"PYTHONPATH": str(args.code.resolve())} if args.code else {}
    server = runtime_proc(root, port, env=env)
    start_with_limit(server, args.nofile)
    held: list[socket.socket] = []
    try:
        server.wait_ready(timeout=60)
        base = server.base
        try:
            with urllib.request.urlopen(base + "/api/traders", timeout=5) as r:
                rooms = [t["trader_id"] for t in json.loads(r.read())["data"]] or ["t_001"]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            rooms = ["t_001"]
        print(f"runtime pid {server.pid}, RLIMIT_NOFILE {args.nofile}, code {args.code or 'this checkout'}, rooms {len(rooms)}")
        quiet = phase(base, server.pid, args.seconds)
        t0 = time.perf_counter()
        held, ok_idle, ok_viewers = flood(port, args.idle, args.viewers, rooms)
        print(f"flood: {ok_idle}/{args.idle} idle connections and {ok_viewers}/{args.viewers} non-reading viewers "
              f"opened in {time.perf_counter() - t0:.1f} s")
        flooded = phase(base, server.pid, args.seconds)
        log = server.read_log()
        print()
        for name, p in (("quiet", quiet), ("flooded", flooded)):
            done = failed = "?"
            if p["start"] and p["end"]:
                done, failed = p["end"][0] - p["start"][0], p["end"][1] - p["start"][1]
            print(f"{name:8} /health:  {summary(p['health'])}")
            print(f"{'':8} operator: {summary(p['operator'])}")
            print(f"{'':8} cycles completed {done}, failed {failed}; server descriptors open {p['fds']}")
        print(f"server log: {log.count('Too many open files')} 'Too many open files', "
              f"{log.count('connection cap')} connection-cap warnings, {log.count('dropped a client that read nothing')} stalled viewers dropped")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as r:
                conns = json.loads(r.read()).get("connections")
            if conns:
                print("guard:", json.dumps(conns))
        except (urllib.error.URLError, OSError, ValueError):
            pass
    finally:
        for s in held:
            s.close()
        server.stop()
    print(f"(root {root}; a shared 2-core machine: absolute latencies are depressed by other work)")


if __name__ == "__main__":
    main()
