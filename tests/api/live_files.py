"""Write live-mode files from the shipped replay bars, shifted so the newest bar ends `age_ms` ago."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from runtime_api.market.bars import load_frames
from runtime_api.storage import write_json_atomic


def write_live_files(root: Path, *, age_ms: int = 0, symbols: tuple[str, ...] = ("600519.SH",)) -> int:
    frames = [f for f in load_frames(root / "data/replay/cn-a/2026-02-13/frames.1m.jsonl") if f["instrument"]["symbol"] in symbols]
    now = int(time.time() * 1000)
    shift = now - age_ms - max(f["window"]["end_ts_ms"] for f in frames)
    shifted = []
    for f in frames:
        g = orjson.loads(orjson.dumps(f))
        for key in ("start_ts_ms", "end_ts_ms"):
            g["window"][key] += shift
        g["event_ts_ms"] += shift
        g["ingest_ts_ms"] += shift
        shifted.append(g)
    live = root / "data/live/onlytrade"
    write_json_atomic(live / "frames.1m.json", {"schema_version": "market.frames.v1", "market": "CN-A", "mode": "real",
                                                "provider": "akshare", "frames": shifted})
    stamp = now - age_ms
    write_json_atomic(live / "market_overview.cn-a.json", {"summary": "CSI300 +0.4%", "latest_ts_ms": stamp})
    write_json_atomic(live / "news_digest.cn-a.json", {"headlines": [{"title": "Liquor stocks steady"}], "latest_ts_ms": stamp})
    write_json_atomic(live / "market_breadth.cn-a.json", {"advancers": 6, "decliners": 3, "unchanged": 1, "latest_ts_ms": stamp})
    return len(shifted)
