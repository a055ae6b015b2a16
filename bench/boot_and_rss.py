"""Boot-to-ready time and resident memory of the runtime, with every agent seeded and cycling fast.

    .venv/bin/python bench/boot_and_rss.py                 # 5 boots, then 60 s of fast cycling
    .venv/bin/python bench/boot_and_rss.py --runs 3 --seconds 30

What it measures (loopback only; each server is a real `python -m runtime_api` under a temporary
ONLYTRADE_ROOT holding copies of agents/ and data/replay/, as tests/e2e/server.py does):
 1. Boot to ready over --runs boots (default 5), each on a fresh root: from process start (Popen) to
    the first 200 from GET /health/ready, polled every 5 ms. Median and max; RSS (VmRSS from
    /proc/<pid>/status) right after ready.
 2. Fast cycling for --seconds (default 60, at most 600): ONLYTRADE_SEED_AGENTS=all, REPLAY_SPEED=600,
    AGENT_DECISION_EVERY_BARS=2 (~5 cycles/s, every agent deciding each cycle). RSS sampled every
    second: after boot, at the end, peak (VmHWM) and growth over the second half (MB/min), plus cycles
    completed and the server's event-loop figures.
 3. A restart on the root the cycling left behind (registry, memory snapshots, logs): boot to ready
    and RSS with existing state, as after a production restart.
 4. Import cost: `python -X importtime -c "import runtime_api.app"` in a fresh interpreter, the
    slowest top-level imports (the floor under boot time).

Targets: boot to ready < 1 s, RSS < 150 MB. Exits 0 regardless; prints the figures.
Other engineers' tests may share the machine: before each boot it waits (at most --wait-quiet s)
until other processes use < 10 % of a core, and it reports the CPU they used meanwhile.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    REPO, cpu_counters, cpu_seconds, foreign_cpu, free_port, get_json, loop_stats, make_root, mb, proc_status,
    runtime_proc, total_cycles, tree_state, wait_quiet,
)

BOOT_TARGET_S = 1.0
RSS_TARGET_MB = 150.0
QUIET_CORES = 0.10


def quiet_first(max_wait: float) -> None:
    if max_wait <= 0:
        return
    quiet, load = wait_quiet(max_wait, threshold=QUIET_CORES)
    if not quiet:
        print(f"  (machine not quiet: other processes use {load:.2f} cores; measuring anyway)", flush=True)


def boot_once(root: Path, *, cpu: int | None, keep: bool = False):
    """Start, wait for ready; returns (seconds, status, foreign CPU, proc); stops unless keep."""
    proc = runtime_proc(root, free_port(), cpu=cpu)
    before = cpu_counters()
    proc.start()
    try:
        secs = proc.wait_ready(timeout=30.0)
    except Exception:
        proc.stop()
        raise
    after = cpu_counters()
    status = proc_status(proc.pid)
    noise = foreign_cpu(before, after, cpu_seconds(proc.pid))
    if not keep:
        t0 = time.perf_counter()
        code = proc.stop()
        status["stop_s"] = round(time.perf_counter() - t0, 3)
        status["exit_code"] = code
    return secs, status, noise, proc


def import_profile(top: int = 8) -> dict:
    """Cumulative import time of runtime_api.app in a fresh interpreter, and the slowest packages."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import runtime_api.app"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    rows = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    total = next((c for c, _, name in rows if name == "runtime_api.app"), None)
    # the costliest third-party / stdlib packages, wherever they are first imported (cumulative time)
    by_package: dict[str, int] = {}
    for c, _, name in rows:
        pkg = name.split(".")[0]
        if pkg != "runtime_api" and not pkg.startswith("__editable__"):
            by_package[pkg] = max(by_package.get(pkg, 0), c)
    top_level = sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
    return {"runtime_api_app_ms": None if total is None else round(total / 1000, 1),
            "slowest": [(name, round(us / 1000, 1)) for name, us in top_level],
            "runtime_api_modules": sorted(((name, round(c / 1000, 1)) for c, _, name in rows if name.startswith("runtime_api.")),
                                          key=lambda kv: -kv[1])[:top]}


def soak(args, root: Path, cpu: int | None) -> dict:
    secs, status, noise, proc = boot_once(root, cpu=cpu, keep=True)
    pid, base = proc.pid, proc.base
    samples = []
    try:
        time.sleep(1.0)
        c0, l0 = total_cycles(base), loop_stats(base)
        rss_ready = proc_status(pid).get("VmRSS")
        t0 = time.monotonic()
        before = cpu_counters()
        cpu0 = cpu_seconds(pid)
        timeline = []
        last = (time.monotonic(), cpu0, c0, (l0 or {}).get("stalls_over_20ms"))
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1.0)
            now = time.monotonic()
            samples.append((round(now - t0, 1), proc_status(pid).get("VmRSS")))
            if len(samples) % 10 == 0 or now - t0 >= args.seconds:
                cpu_now, cyc, loop = cpu_seconds(pid), total_cycles(base), loop_stats(base) or {}
                _, rp = get_json(base, "/api/replay/runtime/status")
                cursor = ((rp or {}).get("data") or {}).get("cursor_index")
                dt = now - last[0]
                timeline.append({
                    "t_s": round(now - t0), "rss_kb": samples[-1][1],
                    "cpu_share": None if cpu_now is None or last[1] is None else round((cpu_now - last[1]) / dt, 2),
                    "cycles": None if cyc is None or last[2] is None else cyc - last[2],
                    "stalls": None if loop.get("stalls_over_20ms") is None or last[3] is None else loop["stalls_over_20ms"] - last[3],
                    "replay_cursor": cursor,
                })
                last = (now, cpu_now, cyc, loop.get("stalls_over_20ms"))
            if proc.proc.poll() is not None:
                raise RuntimeError(f"server exited during the run:\n{proc.read_log()[-2000:]}")
        elapsed = time.monotonic() - t0
        after = cpu_counters()
        cpu1 = cpu_seconds(pid)
        c1, l1 = total_cycles(base), loop_stats(base)
        st = proc_status(pid)
        _, stats_body = get_json(base, "/api/statistics")
    finally:
        t_stop = time.perf_counter()
        code = proc.stop()
        stop_s = time.perf_counter() - t_stop
    half = [kb for t, kb in samples if t >= args.seconds / 2 and kb]
    growth = None
    if len(half) >= 2:
        n = len(half)
        xs = list(range(n))
        mx, my = statistics.fmean(xs), statistics.fmean(half)
        slope_kb_per_sample = sum((x - mx) * (y - my) for x, y in zip(xs, half)) / max(1e-9, sum((x - mx) ** 2 for x in xs))
        growth = slope_kb_per_sample * 60 / 1024  # samples are ~1 s apart
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return {
        "boot_s": round(secs, 3),
        "seconds": round(elapsed, 1),
        "rss_after_boot_kb": status.get("VmRSS"),
        "rss_1s_after_ready_kb": rss_ready,
        "rss_end_kb": st.get("VmRSS"),
        "rss_max_sampled_kb": max((kb for _, kb in samples if kb), default=None),
        "vmhwm_kb": st.get("VmHWM"),
        "threads": st.get("Threads"),
        "rss_growth_mb_per_min_second_half": None if growth is None else round(growth, 2),
        "cycles": None if c0 is None or c1 is None else c1 - c0,
        "statistics": (stats_body or {}).get("data"),
        "server_cpu_share": None if server_cpu is None else round(server_cpu / elapsed, 2),
        "other_cores": round(foreign_cpu(before, after, server_cpu)["foreign_s"] / elapsed, 2),
        "steal_cores": round(foreign_cpu(before, after, server_cpu)["steal_s"] / elapsed, 2),
        "loop_before": l0,
        "loop_after": l1,
        "stop_s": round(stop_s, 2),
        "exit_code": code,
        "samples": samples,
        "timeline": timeline,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="boots to time (1-20)")
    ap.add_argument("--seconds", type=float, default=60.0, help="fast-cycling duration for the RSS figure (5-600)")
    ap.add_argument("--pin", type=int, default=None, help="pin each server to this CPU with taskset (default: not pinned)")
    ap.add_argument("--wait-quiet", type=float, default=30.0, help="wait up to this long for a quiet machine before each boot (0: don't)")
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args()
    args.runs = min(20, max(1, args.runs))
    args.seconds = min(600.0, max(5.0, args.seconds))

    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "tree": tree_state(), "args": vars(args)}
    print(f"runtime code: {results['tree']}; pinned to CPU {args.pin}" if args.pin is not None else f"runtime code: {results['tree']}; not pinned")

    print(f"\nboot to ready, {args.runs} runs on fresh roots:", flush=True)
    boots = []
    for i in range(args.runs):
        quiet_first(args.wait_quiet)
        root = make_root()
        try:
            secs, status, noise, _ = boot_once(root, cpu=args.pin)
            boots.append({"boot_s": round(secs, 3), "rss_kb": status.get("VmRSS"), "stop_s": status.get("stop_s"),
                          "exit_code": status.get("exit_code"), **noise})
            print(f"  run {i + 1}: ready in {secs:.3f} s, RSS {mb(status.get('VmRSS'))}, SIGTERM -> exit"
                  f" {status.get('exit_code')} in {status.get('stop_s')} s, other-CPU {noise['foreign_s']} s, steal {noise['steal_s']} s", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"  run {i + 1}: failed: {exc}")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    results["boots"] = boots

    print(f"\nfast cycling for {args.seconds:.0f} s with every agent seeded (REPLAY_SPEED=600, AGENT_DECISION_EVERY_BARS=2):", flush=True)
    quiet_first(args.wait_quiet)
    root = make_root()
    try:
        try:
            results["soak"] = soak(args, root, args.pin)
        except Exception as exc:  # noqa: BLE001
            print(f"  failed: {exc}")
        print("\nrestart on the state the cycling left behind:", flush=True)
        quiet_first(args.wait_quiet)
        try:
            secs, status, noise, _ = boot_once(root, cpu=args.pin)
            results["restart"] = {"boot_s": round(secs, 3), "rss_kb": status.get("VmRSS"), **noise}
            print(f"  ready in {secs:.3f} s, RSS {mb(status.get('VmRSS'))}", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"  failed: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    try:
        results["imports"] = import_profile()
    except Exception as exc:  # noqa: BLE001
        results["imports"] = {"error": str(exc)}

    print("\n==================== results ====================")
    print(f"date {results['date']}; runtime code {results['tree']}")
    if boots:
        times = [b["boot_s"] for b in boots]
        med, worst = statistics.median(times), max(times)
        rss = [b["rss_kb"] for b in boots if b.get("rss_kb")]
        print(f"boot to ready ({len(times)} runs, fresh roots): median {med:.3f} s, max {worst:.3f} s"
              f" (all: {', '.join(f'{t:.3f}' for t in times)}) — target < {BOOT_TARGET_S:.0f} s: {'PASS' if worst < BOOT_TARGET_S else 'FAIL'}")
        if rss:
            print(f"RSS right after ready: median {mb(int(statistics.median(rss)))}, max {mb(max(rss))}")
        noisy = [i + 1 for i, b in enumerate(boots) if b["foreign_s"] + b["steal_s"] > QUIET_CORES * max(b["boot_s"], 0.5)]
        if noisy:
            print(f"  runs {noisy} overlapped with other processes' CPU use (NOISY)")
    s = results.get("soak")
    if s:
        print(f"fast cycling {s['seconds']} s: {s['cycles']} cycles ({(s['cycles'] or 0) / max(s['seconds'], 1):.1f}/s),"
              f" statistics {s['statistics']}")
        print(f"  RSS: after boot {mb(s['rss_after_boot_kb'])}, 1 s after ready {mb(s['rss_1s_after_ready_kb'])},"
              f" end {mb(s['rss_end_kb'])}, max sampled {mb(s['rss_max_sampled_kb'])}, VmHWM {mb(s['vmhwm_kb'])},"
              f" growth over the second half {s['rss_growth_mb_per_min_second_half']} MB/min, {s['threads']} threads"
              f" — target < {RSS_TARGET_MB:.0f} MB: {'PASS' if s['vmhwm_kb'] and s['vmhwm_kb'] < RSS_TARGET_MB * 1024 else 'FAIL'}")
        print(f"  server CPU {100 * (s['server_cpu_share'] or 0):.0f}% of a core; other processes {100 * s['other_cores']:.0f}%,"
              f" VM steal {100 * s['steal_cores']:.0f}% of a core{' (NOISY)' if s['other_cores'] + s['steal_cores'] > QUIET_CORES else ''}")
        print(f"  event loop after: {s['loop_after']}; SIGTERM -> exit {s['exit_code']} in {s['stop_s']} s")
        print("  per 10 s:  t(s)   RSS MB  server CPU  cycles  loop stalls>20ms  replay cursor")
        for row in s.get("timeline") or []:
            cpu = "-" if row["cpu_share"] is None else f"{100 * row['cpu_share']:.0f}%"
            print(f"           {row['t_s']:4}  {((row['rss_kb'] or 0) / 1024):7.1f}  {cpu:>10}  {row['cycles']!s:>6}  {row['stalls']!s:>16}  {row['replay_cursor']!s:>13}")
    r = results.get("restart")
    if r:
        print(f"restart with existing state: ready in {r['boot_s']:.3f} s, RSS {mb(r['rss_kb'])}"
              f" — target < {BOOT_TARGET_S:.0f} s: {'PASS' if r['boot_s'] < BOOT_TARGET_S else 'FAIL'}")
    imp = results.get("imports") or {}
    if imp.get("runtime_api_app_ms") is not None:
        print(f"import runtime_api.app in a fresh interpreter: {imp['runtime_api_app_ms']} ms cumulative; slowest packages: "
              + ", ".join(f"{n} {t} ms" for n, t in imp["slowest"]))
        print("  slowest runtime_api modules (cumulative): " + ", ".join(f"{n} {t} ms" for n, t in imp["runtime_api_modules"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - exit 0 regardless; print what happened
        print(f"boot_and_rss: aborted: {type(exc).__name__}: {exc}")
    sys.exit(0)
