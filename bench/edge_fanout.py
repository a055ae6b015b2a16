"""Viewer-bus fan-out: Redis, the runtime and 4 edges on this machine, 4,000 SSE viewers spread
over the edges; one decision, its delivery latency at every viewer, and the RSS of each process.

    .venv/bin/python bench/edge_fanout.py                         # 4 edges, 4,000 viewers, 3 decisions
    .venv/bin/python bench/edge_fanout.py --edges 2 --viewers 1000 --decisions 5

Starts redis-server (Debian package; temp dir, free port, no persistence), the runtime with
VIEWER_BUS_URL (temp root, one agent seeded, replay paused: only the benchmark's steps decide),
and --edges `onlytrade-edge` processes. The viewers (raw asyncio sockets, in one client process
per edge) watch the agent's room, spread evenly over the edges. Per decision (POST step to the
runtime), latency is measured per viewer from the decision event's `ts_ms` (the runtime's wall
clock when it published) to its arrival, and from the POST. The client processes share the
machine's 2 cores with everything else, so their own CPU adds to the figures. Loopback only,
bounded, exits 0; needs redis-server (`apt-get install -y redis-server`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import TOKEN, clean_env, free_port, make_root, mb, proc_status, runtime_proc  # noqa: E402
from _sse_raw import RawViewer, percentile  # noqa: E402

ROOM = "t_001"


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--save", "", "--appendonly", "no", "--logfile", str(folder / "redis.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    import socket

    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_edge(folder: Path, url: str, n: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    env = clean_env({"ONLYTRADE_ROOT": str(folder), "HOST": "127.0.0.1", "PORT": str(port), "VIEWER_BUS_URL": url,
                     "EDGE_NAME": f"edge-{n}", "LOG_LEVEL": "warning"})
    log = open(folder / "edge.log", "ab")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "onlytrade-edge")], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def wait_ok(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 50):.1f} ms  p99 {percentile(values, 99):.1f} ms  max {max(values):.1f} ms"


async def client_main(url: str, count: int) -> None:
    """A client process: `count` viewers of `url`; READY when all have a packet, results on STOP."""
    import json

    stop = asyncio.Event()
    viewers = [RawViewer(url) for _ in range(count)]
    tasks = [asyncio.create_task(v.run(stop)) for v in viewers]
    deadline = time.perf_counter() + 90
    while time.perf_counter() < deadline and any(v.opened_at is None and v.error is None for v in viewers):
        await asyncio.sleep(0.05)
    print("READY", sum(v.opened_at is not None for v in viewers), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"decisions": [v.decisions for v in viewers if v.opened_at is not None],
                      "errors": sorted({v.error for v in viewers if v.error and v.opened_at is None}),
                      "bytes": sum(v.bytes for v in viewers)}), flush=True)


def run(args, runtime_base: str, edges: list[str], pids: dict[str, int]) -> None:
    import json

    per = [args.viewers // len(edges) + (1 if i < args.viewers % len(edges) else 0) for i in range(len(edges))]
    started = time.perf_counter()
    clients = [subprocess.Popen([sys.executable, __file__, "--client-of", f"{base}/api/rooms/{ROOM}/events?decision_limit=5",
                                 "--viewers", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for base, n in zip(edges, per, strict=True)]
    connected = sum(int(c.stdout.readline().split()[1]) for c in clients)
    print(f"{connected}/{args.viewers} viewers connected over {len(edges)} edges in {time.perf_counter() - started:.1f} s "
          f"({len(clients)} client processes, one per edge)")
    print("RSS with every viewer connected: " + ", ".join(f"{name} {mb(proc_status(pid).get('VmRSS'))}" for name, pid in pids.items()))
    posts = []
    with httpx.Client(timeout=30) as client:
        for _ in range(args.decisions):
            posts.append(time.time() * 1000)
            client.post(runtime_base + "/api/agent/runtime/control", json={"action": "step"}, headers={"x-control-token": TOKEN})
            time.sleep(args.gap)
    results = []
    for c in clients:
        c.stdin.write("STOP\n")
        c.stdin.flush()
    for c in clients:
        results.append(json.loads(c.stdout.readline()))
        c.wait(30)
    viewers = [d for r in results for d in r["decisions"]]
    for n, posted in enumerate(posts):
        got = [v[n] for v in viewers if len(v) > n]
        print(f"decision {n + 1}: delivered to {len(got)}/{len(viewers)}; from publish {fmt([w - ts for w, ts in got])}; "
              f"from POST {fmt([w - posted for w, _ in got])}")
    print(f"client errors: {sorted({e for r in results for e in r['errors']}) or 'none'}; "
          f"bytes per viewer {sum(r['bytes'] for r in results) / max(1, len(viewers)) / 1024:.0f} KiB")
    print("RSS after the decisions: " + ", ".join(f"{name} {mb(proc_status(pid).get('VmRSS'))}" for name, pid in pids.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=4)
    ap.add_argument("--viewers", type=int, default=4000)
    ap.add_argument("--decisions", type=int, default=3)
    ap.add_argument("--gap", type=float, default=3.0, help="seconds between decisions")
    ap.add_argument("--client-of", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client_of:
        asyncio.run(client_main(args.client_of, args.viewers))
        return
    args.edges, args.viewers, args.decisions = max(1, min(16, args.edges)), max(1, min(20000, args.viewers)), max(1, min(20, args.decisions))
    if shutil.which("redis-server") is None:
        print("redis-server is not installed: apt-get install -y redis-server")
        return
    work = Path(tempfile.mkdtemp(prefix="onlytrade-fanout-"))
    root = make_root()
    procs: list[subprocess.Popen] = []
    runtime = None
    try:
        redis, url = start_redis(work)
        procs.append(redis)
        runtime = runtime_proc(root, free_port(), env={"VIEWER_BUS_URL": url, "ONLYTRADE_SEED_AGENTS": ROOM, "REPLAY_SPEED": "0.1"}).start()
        runtime.wait_ready()
        httpx.post(runtime.base + "/api/agent/runtime/control", json={"action": "pause"}, headers={"x-control-token": TOKEN})
        edges = []
        for n in range(args.edges):
            proc, base = start_edge(work / f"edge-{n}", url, n)
            procs.append(proc)
            edges.append((proc, base))
        for proc, base in edges:
            wait_ok(base + f"/api/rooms/{ROOM}/stream-packet")
        pids = {"redis": redis.pid, "runtime": runtime.pid, **{f"edge-{n}": p.pid for n, (p, _) in enumerate(edges)}}
        print(f"redis-server, runtime and {args.edges} edges on this machine ({len(pids)} processes); "
              f"{args.viewers} SSE viewers of room {ROOM}")
        print("RSS before viewers: " + ", ".join(f"{name} {mb(proc_status(pid).get('VmRSS'))}" for name, pid in pids.items()))
        run(args, runtime.base, [b for _, b in edges], pids)
    finally:
        for proc in reversed(procs[1:]):
            proc.terminate()
        if runtime is not None:
            runtime.stop()
        for proc in procs[:1]:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
