"""A 1,000-viewer connect storm on the runtime while every agent cycles: /health latency during it.

    .venv/bin/python bench/connect_storm.py                 # 1,000 viewers over the lobby rooms
    .venv/bin/python bench/connect_storm.py --viewers 2000 --rounds 3

Starts the runtime (temp root, every agent cycling, as bench/viewer_reads.py), then per round:
a /health prober (its own process, one request every 10 ms on one keep-alive connection) runs
for the quiet second before, the storm, and a second after; the storm opens --viewers SSE
connections at once (raw sockets, spread over the lobby rooms) and waits until each has its
first `stream_packet`, then every viewer hangs up at once. Prints /health p50/p99/max before and
during the storm and while they leave, how long the storm took, the runtime's RSS, its stream
door and garbage-collector figures. Target: /health p99 <= 20 ms during the storm. Loopback only,
bounded, exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import TOKEN, free_port, get_json, loop_stats, make_root, mb, proc_status, runtime_proc  # noqa: E402
from _sse_raw import RawViewer, percentile, probe_result, start_probe  # noqa: E402

TARGET_P99_MS = 20.0


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 50):.2f} ms, p99 {percentile(values, 99):.2f} ms, max {max(values):.2f} ms (n={len(values)})"


async def storm(base: str, rooms: list[str], count: int, timeout: float) -> tuple[list[RawViewer], float, float, asyncio.Event, list]:
    stop = asyncio.Event()
    viewers = [RawViewer(f"{base}/api/rooms/{rooms[i % len(rooms)]}/events?decision_limit=5") for i in range(count)]
    started = time.time()
    tasks = [asyncio.create_task(v.run(stop)) for v in viewers]
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and any(v.opened_at is None and v.error is None for v in viewers):
        await asyncio.sleep(0.01)
    return viewers, started, time.time(), stop, tasks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--viewers", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--paused", action="store_true", help="pause the agents first (isolates the storm's own cost)")
    args = ap.parse_args()
    count = max(1, min(5000, args.viewers))
    root = make_root()
    proc = runtime_proc(root, free_port()).start()
    try:
        proc.wait_ready()
        time.sleep(2)
        _, traders = get_json(proc.base, "/api/traders")
        rooms = [t["trader_id"] for t in (traders or {}).get("data") or []] or ["t_001"]
        if args.paused:
            import httpx

            httpx.post(proc.base + "/api/agent/runtime/control", json={"action": "pause"}, headers={"x-control-token": TOKEN})
        print(f"runtime pid {proc.pid}, {'agents paused' if args.paused else 'every agent cycling'}; {count} viewers over {len(rooms)} rooms; /health every 10 ms from its own process")
        for n in range(max(1, min(10, args.rounds))):
            loop_before = loop_stats(proc.base) or {}
            probe = start_probe(proc.base, seconds=12)
            time.sleep(2.0)
            viewers, started, ended, closing = asyncio.run(_storm_and_close(proc.base, rooms, count))
            time.sleep(max(0.0, 12 - (time.time() - started) - 2))
            samples = probe_result(probe)
            before = [ms for t, ms, ok in samples if t < started]
            during = [ms for t, ms, ok in samples if started <= t <= ended]
            leaving = [ms for t, ms, ok in samples if closing <= t <= closing + 1.5]
            failed = sum(1 for t, ms, ok in samples if not ok)
            opened = [v for v in viewers if v.opened_at is not None]
            errors = sorted({v.error for v in viewers if v.error and v.opened_at is None})
            p99 = percentile(during, 99)
            verdict = "PASS" if p99 is not None and p99 <= TARGET_P99_MS and len(opened) == count else "FAIL"
            print(f"\nround {n + 1}: {len(opened)}/{count} viewers had their first packet in {ended - started:.2f} s; errors {errors or 'none'}")
            print(f"  /health before the storm: {fmt(before)}")
            print(f"  /health during the storm: {fmt(during)}; failed probes {failed}  -> target p99 <= {TARGET_P99_MS:.0f} ms: {verdict}")
            print(f"  /health while they all leave (1.5 s): {fmt(leaving)}")
            loop_after = loop_stats(proc.base) or {}
            print(f"  runtime event loop (its own 10 ms probe): stalls > 20 ms this round "
                  f"{(loop_after.get('stalls_over_20ms') or 0) - (loop_before.get('stalls_over_20ms') or 0)}, "
                  f"max lag since boot {loop_after.get('max_lag_ms')} ms")
            print(f"  runtime RSS after the round: {mb(proc_status(proc.pid).get('VmRSS'))}")
            _, status = get_json(proc.base, "/api/agent/runtime/status")
            data = (status or {}).get("data") or {}
            gc_state, door = data.get("gc") or {}, data.get("stream_door") or {}
            print(f"  stream door: {door.get('admitted')} admitted so far, at most {door.get('max_waiting')} waiting; "
                  f"gc: longest pause {gc_state.get('max_pause_ms')} ms, {gc_state.get('pauses_over_20ms')} over 20 ms, "
                  f"{gc_state.get('frozen_objects')} objects frozen")
            time.sleep(2)
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _storm_and_close(base: str, rooms: list[str], count: int):
    viewers, started, ended, stop, tasks = await storm(base, rooms, count, timeout=40)
    await asyncio.sleep(0.5)
    closing = time.time()  # every viewer hangs up at once (a proxy restart, the show's end)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return viewers, started, ended, closing


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
