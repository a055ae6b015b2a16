"""Room SSE fan-out benchmark: N concurrent viewers of one room, one decision, delivery latency.

Runs against a server you started yourself, on loopback only, or starts the real runtime itself:

    python bench/sse_viewers.py --base http://127.0.0.1:8080 --room t_001 --viewers 100 --viewers 1000
    python bench/sse_viewers.py --spawn --room demo_momentum --viewers 100 --viewers 1000

With --spawn it runs `python -m runtime_api` under a temporary root (copies of agents/ and
data/replay/), seeds only --room, pauses the replay so that only the benchmark's step decides,
and stops the server afterwards.

For each viewer count it opens that many `/api/rooms/<room>/events` streams, waits until every
one has its initial `stream_packet`, triggers one decision (POST /api/agent/runtime/control
{"action":"step"} with `x-control-token` from --token or ONLYTRADE_CONTROL_TOKEN), and reports
how long the `decision` event took to reach each viewer (from the event's own `ts_ms`, the
server's wall clock, and from the POST), the server CPU time spent from the POST until every
viewer had the event, and the server's RSS before, while connected and after. The viewers share
this one client process, so at high counts its own parsing adds to the measured latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import TOKEN as SPAWN_TOKEN  # noqa: E402
from _common import free_port, make_root, runtime_proc  # noqa: E402

MAX_VIEWERS = 5000
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class Viewer:
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    got_decision: asyncio.Event = field(default_factory=asyncio.Event)
    decision_wall_ms: float | None = None
    decision_ts_ms: int | None = None
    decision_mono: float | None = None
    error: str | None = None
    bytes: int = 0


async def watch(client: httpx.AsyncClient, url: str, viewer: Viewer, stop: asyncio.Event) -> None:
    try:
        async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
            if response.status_code != 200:
                viewer.error = f"http_{response.status_code}"
                viewer.opened.set()
                return
            event = None
            async for line in response.aiter_lines():
                viewer.bytes += len(line) + 1
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event is not None:
                    if event == "stream_packet":
                        viewer.opened.set()
                    elif event == "decision" and not viewer.got_decision.is_set():
                        viewer.decision_mono = time.perf_counter()
                        viewer.decision_wall_ms = time.time() * 1000
                        viewer.decision_ts_ms = orjson.loads(line[6:]).get("ts_ms")
                        viewer.got_decision.set()
                elif line == "":
                    event = None
                if stop.is_set():
                    return
    except (httpx.HTTPError, OSError) as exc:
        viewer.error = type(exc).__name__
        viewer.opened.set()


def rss_kb(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_ms(pid: int | None) -> float | None:
    """The process's user+system CPU time so far."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def listening_pid(port: int) -> int | None:
    """The pid holding a LISTEN socket on `port`, found through /proc (same user or root)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":
                inodes.add(f"socket:[{cols[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_round(args: argparse.Namespace, count: int, pid: int | None) -> dict:
    url = f"{args.base}/api/rooms/{args.room}/events?decision_limit={args.decision_limit}"
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    timeout = httpx.Timeout(args.timeout, read=None)
    result: dict = {"viewers": count, "rss_before_kb": rss_kb(pid)}
    stop = asyncio.Event()
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        viewers = [Viewer() for _ in range(count)]
        started = time.perf_counter()
        tasks = [asyncio.create_task(watch(client, url, v, stop)) for v in viewers]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(v.opened.wait() for v in viewers)), args.timeout)
        opened = [v for v in viewers if v.opened.is_set() and v.error is None]
        result["connected"] = len(opened)
        result["connect_s"] = time.perf_counter() - started
        result["errors"] = sorted({v.error for v in viewers if v.error})
        result["rss_connected_kb"] = rss_kb(pid)

        headers = {"x-control-token": args.token} if args.token else {}
        cpu_before = cpu_ms(pid)
        posted = time.perf_counter()
        try:
            response = await client.post(f"{args.base}{args.trigger_path}", json={"action": "step"},
                                         headers=headers, timeout=args.timeout)
            result["trigger"] = f"{response.status_code} {response.json().get('error', 'ok')}"
        except (httpx.HTTPError, ValueError) as exc:
            result["trigger"] = type(exc).__name__
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(v.got_decision.wait() for v in opened)), args.timeout)
        cpu_after = cpu_ms(pid)
        result["server_cpu_ms"] = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        got = [v for v in opened if v.got_decision.is_set()]
        result["delivered"] = len(got)
        result["from_ts_ms"] = [v.decision_wall_ms - v.decision_ts_ms for v in got if v.decision_ts_ms]
        result["from_post_ms"] = [(v.decision_mono - posted) * 1000 for v in got]
        result["bytes_per_viewer"] = statistics.mean(v.bytes for v in opened) if opened else 0
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(args.settle)
    result["rss_after_kb"] = rss_kb(pid)
    return result


def fmt_ms(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{percentile(values, p):.1f}" for p in (50, 95, 99)) + f" / {max(values):.1f}"


def fmt_kb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f}"


def print_table(results: list[dict], pid: int | None) -> None:
    print(f"server pid: {pid if pid is not None else 'unknown (RSS not measured)'}")
    header = ("viewers", "connected", "delivered", "connect s", "decision latency ms p50/p95/p99/max",
              "from POST ms p50/p95/p99/max", "server CPU ms", "RSS MiB before/connected/after", "trigger")
    rows = [header]
    for r in results:
        rows.append((
            str(r["viewers"]), str(r["connected"]), str(r["delivered"]), f"{r['connect_s']:.2f}",
            fmt_ms(r["from_ts_ms"]), fmt_ms(r["from_post_ms"]),
            "-" if r["server_cpu_ms"] is None else f"{r['server_cpu_ms']:.0f}",
            "/".join(fmt_kb(r[k]) for k in ("rss_before_kb", "rss_connected_kb", "rss_after_kb")),
            r["trigger"],
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in results:
        if r["errors"]:
            print(f"{r['viewers']} viewers: connection errors {', '.join(r['errors'])}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="server URL, loopback only (http://127.0.0.1:PORT)")
    parser.add_argument("--spawn", action="store_true", help="start the runtime under a temporary root instead")
    parser.add_argument("--room", default="t_001")
    parser.add_argument("--viewers", type=int, action="append", help="viewer count; repeat for several rounds")
    parser.add_argument("--token", default=os.environ.get("ONLYTRADE_CONTROL_TOKEN", ""))
    parser.add_argument("--pid", type=int, help="server pid for RSS (default: whoever listens on the port)")
    parser.add_argument("--trigger-path", default="/api/agent/runtime/control")
    parser.add_argument("--decision-limit", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each phase")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before measuring RSS after closing")
    args = parser.parse_args(argv)
    args.viewers = args.viewers or [100]
    if any(not 1 <= n <= MAX_VIEWERS for n in args.viewers):
        parser.error(f"--viewers must be within 1..{MAX_VIEWERS}")
    if args.spawn == bool(args.base):
        parser.error("give either --base or --spawn")
    if args.base:
        args.base = args.base.rstrip("/")
        parts = urlsplit(args.base)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            parser.error("--base must be an http:// loopback URL")
        args.port = parts.port or 80
    return args


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


async def main_async(args: argparse.Namespace) -> list[dict]:
    pid = args.pid if args.pid is not None else listening_pid(args.port)
    results = []
    for count in args.viewers:
        results.append(await run_round(args, count, pid))
    print_table(results, pid)
    return results


@contextlib.contextmanager
def spawned_runtime(args: argparse.Namespace):
    """The real runtime on a free loopback port, seeded with the room's agent, replay paused."""
    root = make_root()
    proc = runtime_proc(root, free_port(), env={"ONLYTRADE_SEED_AGENTS": args.room, "REPLAY_SPEED": "1"})
    try:
        proc.start()
        proc.wait_ready()
        paused = httpx.post(f"{proc.base}/api/replay/runtime/control", json={"action": "pause"},
                            headers={"x-control-token": SPAWN_TOKEN}, timeout=10)
        paused.raise_for_status()
        args.base, args.port, args.pid, args.token = proc.base, int(proc.base.rsplit(":", 1)[1]), proc.pid, SPAWN_TOKEN
        yield proc
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit(max(args.viewers) + 256)  # before --spawn, so the server inherits it
    with spawned_runtime(args) if args.spawn else contextlib.nullcontext():
        results = asyncio.run(main_async(args))
    return 0 if all(r["delivered"] == r["viewers"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
