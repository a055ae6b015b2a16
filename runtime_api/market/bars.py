"""Bars (`market.bar.v1`): load frame files, index them, and build longer intervals from real 1m bars.

Frames are shared between callers once indexed: treat every returned dict as read-only.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from runtime_api.market.calendar import CN, SESSIONS, US, bar_phase, local_datetime, session_bounds_ms
from runtime_api.state.storage import CorruptFileError

INTERVALS = ("1m", "5m", "15m", "30m", "60m", "1h", "4h", "1d")
INTERVAL_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "60m": 60, "1h": 60, "4h": 240, "1d": 1440}
_DAY_FILES = ("frames.1m.jsonl", "frames.1m.json", "frames.1m.parquet")  # first wins in a folder
DEFAULT_LIMIT = 800
MAX_LIMIT = 2000


def clamp_limit(raw: Any, default: int = DEFAULT_LIMIT) -> int:
    """A bar count in 1..2000; anything unparseable gives the default, as the Node runtime."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(value):
        return default
    return max(1, min(MAX_LIMIT, math.floor(value)))


# ---- loading ---------------------------------------------------------------------------------


def _parse(raw: bytes, path: Path, where: str = "") -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CorruptFileError(path, f"invalid_json: {where}{str(exc)[:160]}") from exc


def parse_batch(raw: bytes, path: Path) -> dict:
    """Parse a frames file's bytes (JSON lines for .jsonl, Parquet for .parquet); raises CorruptFileError."""
    if path.suffix == ".parquet":
        from .parquet_frames import frames_from_bytes  # pyarrow only when a pack is Parquet

        return {"frames": frames_from_bytes(raw, path)}
    if path.suffix == ".jsonl":
        frames = [_parse(line, path, f"line {n}: ") for n, line in enumerate(raw.splitlines(), 1) if line.strip()]
        return {"frames": frames}
    payload = _parse(raw, path)
    if isinstance(payload, list):
        return {"frames": payload}
    if isinstance(payload, dict) and isinstance(payload.get("frames"), list):
        return payload
    raise CorruptFileError(path, "invalid_payload: expected a market.frames.v1 object or a list of bars")


def _day_files(directory: Path) -> list[Path]:
    by_folder: dict[Path, Path] = {}
    for name in reversed(_DAY_FILES):  # .jsonl wins over .json over .parquet in one folder
        for file in directory.rglob(name):
            by_folder[file.parent] = file
    return [by_folder[folder] for folder in sorted(by_folder)]


def load_batch(path: Path | str) -> dict:
    """Read frames with the batch's `mode` and `provider` (taken from the first bar when the file has none)."""
    path = Path(path)
    if path.is_dir():
        files = _day_files(path)
        if not files:
            raise FileNotFoundError(f"no frames.1m.jsonl or frames.1m.json under {path}")
        frames: list = []
        for file in files:
            frames.extend(parse_batch(file.read_bytes(), file)["frames"])
        payload: dict = {"frames": frames}
    else:
        payload = parse_batch(path.read_bytes(), path)
    frames = [f for f in payload["frames"] if isinstance(f, dict)]
    first = frames[0] if frames else {}
    providers = {f.get("provider") for f in frames if f.get("provider")}
    default_provider = first.get("provider") if len(providers) <= 1 else "mixed"
    return {
        "mode": payload.get("mode") or first.get("mode") or "real",
        "provider": payload.get("provider") or default_provider or "unknown",
        "frames": frames,
    }


def load_frames(path: Path | str) -> list[dict]:
    """Bars from a market.frames.v1 .json (or a bare list), a .jsonl, or a tree of day folders."""
    return load_batch(path)["frames"]


# ---- index -----------------------------------------------------------------------------------


def symbol_of(frame: dict) -> str:
    """The bar's upper-cased symbol (instrument.symbol, else a top-level symbol), or ""."""
    instrument = frame.get("instrument")
    raw = instrument.get("symbol") if isinstance(instrument, dict) else None
    return str(raw or frame.get("symbol") or "").strip().upper()


def start_of(frame: dict) -> int | None:
    """window.start_ts_ms as an int, or None when missing."""
    window = frame.get("window")
    start = window.get("start_ts_ms") if isinstance(window, dict) else None
    return int(start) if isinstance(start, (int, float)) and math.isfinite(start) else None


def end_of(frame: dict) -> int:
    """window.end_ts_ms, else start + the interval's length."""
    window = frame.get("window") or {}
    end = window.get("end_ts_ms")
    if isinstance(end, (int, float)) and math.isfinite(end):
        return int(end)
    return start_of(frame) + INTERVAL_MINUTES.get(frame.get("interval"), 1) * 60_000


class FrameIndex:
    """Bars by (symbol, interval): de-duplicated on start (last wins) and sorted ascending."""

    def __init__(self, frames: Iterable[dict] = ()):
        by_key: dict[tuple[str, str], dict[int, dict]] = {}
        for frame in frames:
            if not isinstance(frame, dict):
                continue
            symbol, interval, start = symbol_of(frame), frame.get("interval"), start_of(frame)
            if not symbol or not isinstance(interval, str) or not interval or start is None:
                continue
            by_key.setdefault((symbol, interval), {})[start] = frame
        self._bars: dict[tuple[str, str], list[dict]] = {}
        self._ends: dict[tuple[str, str], list[int]] = {}
        for key, by_start in by_key.items():
            bars = [by_start[s] for s in sorted(by_start)]
            self._bars[key] = bars
            self._ends[key] = [end_of(b) for b in bars]
        self.frame_count = sum(len(b) for b in self._bars.values())

    def __len__(self) -> int:
        return self.frame_count

    def symbols(self, interval: str = "1m") -> list[str]:
        """Symbols that have bars of this interval, sorted."""
        return sorted(symbol for symbol, iv in self._bars if iv == interval)

    def frames(self, symbol: str, interval: str = "1m", limit: int | None = None, until_ts_ms: int | None = None) -> list[dict]:
        """The last `limit` bars, only those whose window ends at or before `until_ts_ms` when given."""
        key = (str(symbol).strip().upper(), interval)
        bars = self._bars.get(key)
        if not bars:
            return []
        stop = len(bars) if until_ts_ms is None else bisect.bisect_right(self._ends[key], until_ts_ms)
        start = 0 if limit is None else max(0, stop - max(0, int(limit)))
        return bars[start:stop]

    def latest(self, symbol: str, interval: str = "1m") -> dict | None:
        """The newest bar of a symbol, or None."""
        bars = self._bars.get((str(symbol).strip().upper(), interval))
        return bars[-1] if bars else None

    def latest_ts_ms(self) -> int | None:
        """The newest window.end_ts_ms in the index."""
        return max((ends[-1] for ends in self._ends.values() if ends), default=None)

    def starts(self, interval: str = "1m") -> list[int]:
        """Sorted unique start timestamps across every symbol (the replay timeline)."""
        return sorted({start_of(b) for (_, iv), bars in self._bars.items() if iv == interval for b in bars})


# ---- aggregation -----------------------------------------------------------------------------


def _num(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _usable(bar: dict) -> bool:
    return start_of(bar) is not None and isinstance(bar.get("bar"), dict) and _num(bar["bar"].get("close")) is not None


def market_of_bar(bar: dict) -> str:
    """'US' for bars stamped US or New York time, else 'CN-A'."""
    instrument = bar.get("instrument") or {}
    if bar.get("market") == US or instrument.get("timezone") == "America/New_York":
        return US
    return CN


@lru_cache(maxsize=1024)
def _sessions(day: str, market: str) -> tuple[tuple[int, int], ...]:
    return tuple(session_bounds_ms(day, market))


def _bucket_of(start_ms: int, interval: str, market: str) -> tuple[str, int, int]:
    """(trading_day, bucket_start_ms, bucket_end_ms) of the bucket holding a 1m bar."""
    local = local_datetime(start_ms, market)
    day = local.date().isoformat()
    sessions = _sessions(day, market)
    if interval == "1d":
        return day, sessions[0][0], sessions[-1][1]
    minute = local.hour * 60 + local.minute
    # The session whose hours are nearest: a bar just outside (an auction print, or a feed that
    # labels bars by their end minute) joins the session's first or last bucket.
    bounds = SESSIONS[market]
    which = min(range(len(bounds)), key=lambda i: max(bounds[i][0] - minute, minute - bounds[i][1], 0))
    open_ms, close_ms = sessions[which]
    step = INTERVAL_MINUTES[interval] * 60_000
    last = max(0, math.ceil((close_ms - open_ms) / step) - 1)
    k = min(max((start_ms - open_ms) // step, 0), last)
    bucket_start = open_ms + k * step
    return day, bucket_start, min(bucket_start + step, close_ms)


def _build(bars: list[dict], interval: str, window: tuple[str, int, int], partial: bool, seq: int) -> dict:
    day, start, end = window
    market = market_of_bar(bars[0])
    first, last = bars[0], bars[-1]
    values = [b["bar"] for b in bars]
    volume = sum(_num(v.get("volume_shares")) or 0 for v in values)
    turnover = sum(_num(v.get("turnover_cny")) or 0 for v in values)
    out_bar = {
        "open": _num(values[0].get("open")) or values[0]["close"],
        "high": max(_num(v.get("high")) or v["close"] for v in values),
        "low": min(_num(v.get("low")) or v["close"] for v in values),
        "close": values[-1]["close"],
        "volume_shares": volume,
        "turnover_cny": round(turnover, 2),
    }
    if volume > 0:
        out_bar["vwap"] = round(turnover / volume, 4)
    if interval == "1d":
        phase = (last.get("session") or {}).get("phase", bar_phase(start_of(last), market)) if partial else "closed"
    else:
        phase = bar_phase(start, market)
    return {
        "schema_version": first.get("schema_version", "market.bar.v1"),
        "market": first.get("market", market),
        "mode": first.get("mode", "real"),
        "provider": first.get("provider", "unknown"),
        "feed": "bars",
        "seq": seq,
        "event_ts_ms": end,
        "ingest_ts_ms": max(int(b.get("ingest_ts_ms") or end_of(b)) for b in bars),
        "instrument": first.get("instrument"),
        "interval": interval,
        "window": {"start_ts_ms": start, "end_ts_ms": end, "trading_day": day},
        "session": {
            "phase": phase,
            "is_halt": all((b.get("session") or {}).get("is_halt", False) for b in bars),
            "is_partial": partial,
        },
        "bar": out_bar,
    }


def aggregate(bars_1m: list[dict], interval: str) -> list[dict]:
    """Bucket one symbol's 1m bars into `interval` bars within each trading session (1d: per day).

    Buckets are anchored at the session open and never span the lunch break or two days; only the
    newest bucket can be partial (`session.is_partial`), when the data ends before the bucket does.
    """
    if interval not in INTERVAL_MINUTES:
        raise ValueError(f"unknown interval {interval!r}")
    ordered = sorted((b for b in bars_1m if _usable(b)), key=start_of)
    if interval == "1m":
        return ordered
    groups: list[tuple[tuple[str, int, int], list[dict]]] = []
    for bar in ordered:
        key = _bucket_of(start_of(bar), interval, market_of_bar(bar))
        if groups and groups[-1][0] == key:
            groups[-1][1].append(bar)
        else:
            groups.append((key, [bar]))
    out = []
    for seq, (window, members) in enumerate(groups, 1):
        # A bucket followed by later data is closed; the newest is partial if the data ends early.
        partial = seq == len(groups) and end_of(members[-1]) < window[2]
        out.append(_build(members, interval, window, partial, seq))
    return out


def to_kline(bar: dict) -> dict:
    """One bar in the `/api/klines` shape."""
    values = bar.get("bar") or {}
    return {
        "openTime": start_of(bar),
        "open": values.get("open"),
        "high": values.get("high"),
        "low": values.get("low"),
        "close": values.get("close"),
        "volume": values.get("volume_shares"),
        "quoteVolume": values.get("turnover_cny"),
    }
