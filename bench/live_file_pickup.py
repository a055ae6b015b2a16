"""Live-file pickup latency: file replaced (os.replace) -> the runtime serves the new bar, polling vs watching.

    .venv/bin/python bench/live_file_pickup.py                 # ~1-2 min
    .venv/bin/python bench/live_file_pickup.py --trials 20 --refresh-ms 10000,2000

For each mode a real `python -m runtime_api` runs in `live_file` mode on a temporary root whose
CN frames file holds a full day of the shipped replay bars (10 symbols, shifted to now). Each trial
appends one bar as the collector does (write a temp file, fsync, `os.replace`), then polls
`GET /api/market/frames?symbol=600519.SH&interval=1m&limit=1` every 2 ms until it returns the new
bar. Trials are spaced by a random pause so the polling phase is sampled uniformly. Modes:
`LIVE_FILE_WATCH=true` (watchfiles) and `LIVE_FILE_WATCH=false` with each `--refresh-ms`
(`LIVE_FILE_REFRESH_MS`, default 10000; the minimum the setting allows is 250). The agents are all
stopped (no cycles), so the figures are the pickup path alone. Prints a table; exits 0.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import free_port, get_json, make_root, runtime_proc  # noqa: E402
from runtime_api.market.bars import load_frames  # noqa: E402
from runtime_api.state.storage import write_json_atomic  # noqa: E402

SYMBOL = "600519.SH"


def write_day(root: Path) -> Path:
    frames = load_frames(root / "data/replay/cn-a/2026-02-13/frames.1m.jsonl")
    shift = int(time.time() * 1000) - 30_000 - max(f["window"]["end_ts_ms"] for f in frames)
    for f in frames:
        f["window"]["start_ts_ms"] += shift
        f["window"]["end_ts_ms"] += shift
        f["event_ts_ms"] += shift
    path = root / "data/live/onlytrade/frames.1m.json"
    write_json_atomic(path, {"schema_version": "market.frames.v1", "market": "CN-A", "mode": "real", "provider": "bench",
                             "frames": frames}, pretty=False)
    return path


def append_bar(path: Path, payload: dict) -> int:
    last = max((f for f in payload["frames"] if f["instrument"]["symbol"] == SYMBOL), key=lambda f: f["window"]["end_ts_ms"])
    bar = orjson.loads(orjson.dumps(last))
    for key in ("start_ts_ms", "end_ts_ms"):
        bar["window"][key] += 60_000
    bar["event_ts_ms"] += 60_000
    payload["frames"].append(bar)
    write_json_atomic(path, payload, pretty=False)
    return bar["window"]["end_ts_ms"]


def newest_end(base: str) -> int | None:
    status, body = get_json(base, f"/api/market/frames?symbol={SYMBOL}&interval=1m&limit=1")
    frames = ((body or {}).get("data") or {}).get("frames") or []
    return frames[-1]["window"]["end_ts_ms"] if status == 200 and frames else None


def run_mode(label: str, env: dict[str, str], trials: int, max_pause_s: float, timeout_s: float) -> dict:
    root = make_root("onlytrade-bench-pickup-")
    path = write_day(root)
    port = free_port()
    proc = runtime_proc(root, port, env={"RUNTIME_DATA_MODE": "live_file", "ONLYTRADE_SEED_AGENTS": "", **env}).start()
    latencies, misses = [], 0
    try:
        proc.wait_ready()
        base = proc.base
        time.sleep(0.5)  # the watch task starts with the app
        payload = orjson.loads(path.read_bytes())
        for _ in range(trials):
            time.sleep(random.uniform(0.05, max_pause_s))
            end = append_bar(path, payload)
            replaced = time.perf_counter()
            while newest_end(base) != end:
                if time.perf_counter() - replaced > timeout_s:
                    misses += 1
                    break
                time.sleep(0.002)
            else:
                latencies.append((time.perf_counter() - replaced) * 1000)
    finally:
        proc.stop()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")  # noqa: E731
    return {"mode": label, "trials": len(latencies), "misses": misses, "p50_ms": pick(0.5), "p90_ms": pick(0.9),
            "max_ms": latencies[-1] if latencies else float("nan"), "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
            "frames": len(payload["frames"]), "file_kb": path.stat().st_size // 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--refresh-ms", default="10000,1000", help="LIVE_FILE_REFRESH_MS values for the polling modes")
    args = parser.parse_args()
    rows = []
    refreshes = [int(x) for x in args.refresh_ms.split(",") if x.strip()]
    rows.append(run_mode(f"watch (refresh {refreshes[0]} ms)", {"LIVE_FILE_WATCH": "true", "LIVE_FILE_REFRESH_MS": str(refreshes[0])},
                         args.trials, 1.0, 30))
    for refresh in refreshes:
        rows.append(run_mode(f"poll (refresh {refresh} ms)", {"LIVE_FILE_WATCH": "false", "LIVE_FILE_REFRESH_MS": str(refresh)},
                             args.trials, refresh / 1000, refresh / 1000 * 3 + 5))
    print(f"{'mode':<28}{'trials':>7}{'miss':>6}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}{'mean ms':>10}  file")
    for r in rows:
        print(f"{r['mode']:<28}{r['trials']:>7}{r['misses']:>6}{r['p50_ms']:>10.1f}{r['p90_ms']:>10.1f}{r['max_ms']:>10.1f}"
              f"{r['mean_ms']:>10.1f}  {r['frames']} frames, {r['file_kb']} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
