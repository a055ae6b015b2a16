"""Write live-mode files from the shipped replay bars, shifted relative to the real clock.

`age_ms=0`: the newest 1m bar ends now (fresh at any time of day). `age_ms>0`: it ends `age_ms`
before the moment freshness is judged against (now in a session, else the last session's close),
so the file is stale at any time of day. The daily file (`LIVE_DAILY_PATH_CN`) gets the shipped
daily bars relabelled onto the trading days ending on the previous trading day (fresh).
"""

from __future__ import annotations

import time
from datetime import date, datetime, time as dtime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from runtime_api.market import session_freshness
from runtime_api.market.bars import load_frames
from runtime_api.market.calendar import CN, is_trading_day, trading_day_of
from runtime_api.state.storage import write_json_atomic

SH = ZoneInfo("Asia/Shanghai")


def _copy(frame: dict) -> dict:
    return orjson.loads(orjson.dumps(frame))


def trading_days_until(last: str, count: int) -> list[str]:
    """`count` trading days ending on `last` (inclusive), oldest first."""
    days, day = [], date.fromisoformat(last)
    while len(days) < count:
        if is_trading_day(day, CN):
            days.append(day.isoformat())
        day -= timedelta(days=1)
    return days[::-1]


def daily_frames(root: Path, symbols: tuple[str, ...], last_day: str) -> list[dict]:
    source = [f for f in load_frames(root / "data/replay/cn-a/history/frames.1d.111.json") if f["instrument"]["symbol"] in symbols]
    out = []
    for symbol in symbols:
        bars = [_copy(f) for f in source if f["instrument"]["symbol"] == symbol]
        for bar, day in zip(bars, trading_days_until(last_day, len(bars)), strict=True):
            d = date.fromisoformat(day)
            start = int(datetime.combine(d, dtime(0, 0), tzinfo=SH).timestamp() * 1000)
            end = int(datetime.combine(d, dtime(15, 0), tzinfo=SH).timestamp() * 1000)
            bar["window"] = {"start_ts_ms": start, "end_ts_ms": end, "trading_day": day}
            bar["event_ts_ms"] = bar["ingest_ts_ms"] = end
            out.append(bar)
    return sorted(out, key=lambda f: (f["window"]["start_ts_ms"], f["instrument"]["symbol"]))


def write_live_files(root: Path, *, age_ms: int = 0, symbols: tuple[str, ...] = ("600519.SH",), now_ms: int | None = None,
                     daily: bool = True) -> int:
    frames = [f for f in load_frames(root / "data/replay/cn-a/2026-02-13/frames.1m.jsonl") if f["instrument"]["symbol"] in symbols]
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if age_ms == 0:
        newest = now
    else:
        judged_at = now if session_freshness.phase(now) == session_freshness.OPEN else session_freshness.last_close_ms(now)
        newest = judged_at - age_ms
    shift = newest - max(f["window"]["end_ts_ms"] for f in frames)
    shifted = []
    for f in frames:
        g = _copy(f)
        for key in ("start_ts_ms", "end_ts_ms"):
            g["window"][key] += shift
        g["window"]["trading_day"] = trading_day_of(g["window"]["start_ts_ms"], CN)
        g["event_ts_ms"] += shift
        g["ingest_ts_ms"] += shift
        shifted.append(g)
    live = root / "data/live/onlytrade"
    write_json_atomic(live / "frames.1m.json", {"schema_version": "market.frames.v1", "market": "CN-A", "mode": "real",
                                                "provider": "akshare", "frames": shifted})
    if daily:
        last_day = session_freshness.previous_trading_day(now)
        write_json_atomic(live / "frames.1d.json", {"schema_version": "market.frames.v1", "market": "CN-A", "mode": "real",
                                                    "provider": "akshare", "frames": daily_frames(root, symbols, last_day)})
    stamp = now - age_ms
    write_json_atomic(live / "market_overview.cn-a.json", {"summary": "CSI300 +0.4%", "latest_ts_ms": stamp})
    write_json_atomic(live / "news_digest.cn-a.json", {"headlines": [{"title": "Liquor stocks steady"}], "latest_ts_ms": stamp})
    write_json_atomic(live / "market_breadth.cn-a.json", {"advancers": 6, "decliners": 3, "unchanged": 1, "latest_ts_ms": stamp})
    return len(shifted)
