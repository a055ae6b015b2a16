"""GET /metrics cost while every shipped agent cycles: scrape latency, body size, series count,
and whether scraping every 250 ms moves the event-loop lag or the cycle rate.

    python bench/metrics_scrape.py [--duration 20] [--scrape-every 0.25]

Prints figures; exits 0. Loopback only; its own server on a temporary root.
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request

from _common import free_port, loop_stats, make_root, runtime_proc, total_cycles


def scrape(base: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        body = r.read()
    took = time.perf_counter() - started
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return took, len(body), series


def phase(base: str, seconds: float, every: float | None) -> dict:
    cycles0 = total_cycles(base) or 0
    lat, size, series = [], 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if every is None:
            time.sleep(0.25)
            continue
        took, size, series = scrape(base)
        lat.append(took)
        time.sleep(every)
    loop = loop_stats(base) or {}
    return {"cycles": (total_cycles(base) or 0) - cycles0, "lat": lat, "size": size, "series": series, "loop": loop}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--scrape-every", type=float, default=0.25)
    args = parser.parse_args()
    root = make_root()
    proc = runtime_proc(root, free_port()).start()
    try:
        proc.wait_ready()
        time.sleep(3)  # let every agent make its first decisions (more series)
        quiet = phase(proc.base, args.duration, None)
        busy = phase(proc.base, args.duration, args.scrape_every)
    finally:
        proc.stop()
    lat = sorted(busy["lat"])
    p = lambda q: lat[min(len(lat) - 1, int(q * (len(lat) - 1)))] * 1000  # noqa: E731
    print(f"scrapes: {len(lat)} in {args.duration:.0f} s; latency p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, max {lat[-1] * 1000:.1f} ms")
    print(f"body: {busy['size'] / 1024:.1f} KB, {busy['series']} series; mean {statistics.fmean(lat) * 1000:.1f} ms")
    for name, ph in (("no scraping", quiet), (f"scraping every {args.scrape_every:g} s", busy)):
        loop = ph["loop"]
        print(f"{name:>24}: cycles {ph['cycles']}, loop p99 {loop.get('p99_lag_ms')} ms, max {loop.get('max_lag_ms')} ms, "
              f"stalls>20ms {loop.get('stalls_over_20ms')} (cumulative since boot)")


if __name__ == "__main__":
    main()
