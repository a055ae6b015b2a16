"""`onlytrade-ops replay-pack build --from-archive <days> --out <dir>`: archived show days -> a replay pack.

The pack has the shipped pack's layout, so `REPLAY_FRAMES_PATH=<dir>` replays it as is:

    <dir>/<day>/frames.1m.jsonl (or .parquet)   the day's complete 1m bars from the archive
    <dir>/<day>/market_breadth.1m.json          the breadth the breadth job archived (else derived from the bars)
    <dir>/<day>/daily_history.1d.json           the daily history the agents had that day (bars before it)
    <dir>/<day>/meta.json                       counts and provenance (archive file digest, closed or not)
    <dir>/history/frames.1d.<N>.json            every day's cut in one file (MARKET_DAILY_HISTORY_PATH); the
                                                replay reads it only up to its clock, so no day sees its own bar
    <dir>/symbol_names.json, <dir>/meta.json    names (REPLAY_SYMBOL_NAMES_PATH); the pack's own provenance

The pack is built in a temporary folder beside `--out` and renamed into place, so a failed build
leaves nothing half-written; an existing `--out` is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from runtime_api import clock
from runtime_api.state import storage
from runtime_api.market.parquet_frames import table_from_frames, write_table
from runtime_api.recording import archive
from runtime_api.settings import Settings, display_path

from .exits import EXIT_OK, EXIT_USAGE, OpsError, Outcome

PACK_SCHEMA = "onlytrade.replay_pack.v1"
FORMATS = ("jsonl", "parquet")


def parse_days(spec: str, available: list[str]) -> list[str]:
    """`all`, `2026-02-10,2026-02-13`, or a range `2026-02-10..2026-02-13` (archived days in it)."""
    spec = spec.strip()
    if spec.lower() == "all":
        return list(available)
    days: list[str] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        try:
            if ".." in item:
                lo, hi = (date.fromisoformat(x.strip()) for x in item.split("..", 1))
                days += [d for d in available if lo.isoformat() <= d <= hi.isoformat()]
            else:
                days.append(date.fromisoformat(item).isoformat())
        except ValueError:
            raise OpsError(EXIT_USAGE, f"--from-archive: {item!r} is not a day (YYYY-MM-DD), a range A..B or 'all'") from None
    return sorted(set(days))


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def derived_breadth(frames: list[dict[str, Any]], prev_close: dict[str, float]) -> list[dict[str, Any]]:
    """Per minute: pool symbols up/down/flat against the previous close (else the day's first open)."""
    series, last_close, ref = [], {}, dict(prev_close)
    by_end: dict[int, list[dict[str, Any]]] = {}
    for f in frames:
        by_end.setdefault(f["window"]["end_ts_ms"], []).append(f)
    for end in sorted(by_end):
        for f in by_end[end]:
            symbol = f["instrument"]["symbol"]
            ref.setdefault(symbol, f["bar"]["open"])
            last_close[symbol] = f["bar"]["close"]
        up = sum(1 for s, c in last_close.items() if c > ref[s])
        down = sum(1 for s, c in last_close.items() if c < ref[s])
        total = len(last_close)
        series.append({"ts_ms": end, "trading_day": by_end[end][0]["window"]["trading_day"], "breadth": {
            "advancers": up, "decliners": down, "unchanged": total - up - down, "total": total,
            "advancer_ratio": round(up / total, 4) if total else 0.0, "red_blue_ratio": round(up / down, 4) if down else None}})
    return series


def _archived_breadth(folder: Path) -> list[dict[str, Any]]:
    path = folder / "market_breadth.1m.jsonl"
    if not path.is_file():
        return []
    points = []
    for line in path.read_bytes().splitlines():
        try:
            point = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn last line after a crash
        if isinstance(point, dict) and isinstance(point.get("breadth"), dict):
            points.append({k: point[k] for k in ("ts_ms", "trading_day", "breadth") if k in point})
    return sorted(points, key=lambda p: p["ts_ms"])


def _frames_payload(frames: list[dict[str, Any]], provider: str, **extra: Any) -> dict[str, Any]:
    return {"schema_version": "market.frames.v1", "market": "CN-A", "mode": "real", "provider": provider, **extra, "frames": frames}


def build(settings: Settings, days_spec: str, out: Path, *, market: str = "CN-A", fmt: str = "jsonl",
          archive_dir: Path | None = None) -> Outcome:
    if fmt not in FORMATS:
        raise OpsError(EXIT_USAGE, f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    root = Path(archive_dir) if archive_dir else settings.resolve(settings.archive_dir)
    available = archive.days(root, market)
    days = parse_days(days_spec, available)
    missing = [d for d in days if d not in available]
    if not days or missing:
        raise OpsError(EXIT_USAGE, f"not in the archive {display_path(settings, root)}: {', '.join(missing) or days_spec}"
                                   f" (archived: {', '.join(available) or 'none'})")
    out = Path(out)
    if out.exists():
        raise OpsError(EXIT_USAGE, f"{out} exists: choose a new --out (a pack is never built over another)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    notes: list[str] = []
    try:
        summary = _build_into(tmp, root, market, days, fmt, settings, notes)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["out"] = str(out)
    notes.append(f"replay it: REPLAY_FRAMES_PATH={out} MARKET_DAILY_HISTORY_PATH={out}/{summary['daily_history_file']} "
                 f"REPLAY_SYMBOL_NAMES_PATH={out}/symbol_names.json")
    return Outcome(summary, EXIT_OK, view="record", notes=notes)


def _build_into(tmp: Path, root: Path, market: str, days: list[str], fmt: str, settings: Settings, notes: list[str]) -> dict[str, Any]:
    history: dict[tuple[str, int], dict[str, Any]] = {}
    names: dict[str, str] = {}
    day_rows = []
    providers: set[str] = set()
    pack_symbols: set[str] = set()
    for day in days:
        folder = archive.day_dir(root, market, day)
        frames = [f for f in archive.read_day(root, market, day) if not (f.get("session") or {}).get("is_partial")]
        if not frames:
            raise OpsError(EXIT_USAGE, f"{day}: the archive holds no complete 1m bars")
        providers |= {f.get("provider") or "unknown" for f in frames}
        manifest = archive.manifest(root, market, day) or {}
        closed = bool((manifest.get("files") or {}).get("frames.1m.parquet", {}).get("closed"))
        if not closed:
            notes.append(f"{day}: the archive day is not closed (the session's last run is missing): the pack holds what was collected")
        target = tmp / day
        target.mkdir(parents=True)
        if fmt == "parquet":
            buffer = io.BytesIO()
            write_table(table_from_frames(frames), buffer)
            (target / "frames.1m.parquet").write_bytes(buffer.getvalue())
        else:
            (target / "frames.1m.jsonl").write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in frames))
        daily = [f for f in archive.read_day(root, market, day, "1d") if f["window"]["trading_day"] < day]
        if not daily:
            notes.append(f"{day}: no archived daily history (the daily job did not run that day)")
        for f in daily:
            history[(f["instrument"]["symbol"], f["window"]["start_ts_ms"])] = f
        storage.write_json_atomic(target / "daily_history.1d.json", _frames_payload(daily, "archive"), pretty=False, locked=False)
        prev_close = {}
        for f in daily:
            prev_close[f["instrument"]["symbol"]] = f["bar"]["close"]  # sorted by start: the last one wins
        points = _archived_breadth(folder)
        breadth_source = "breadth_job" if points else "derived_from_frames"
        if not points:
            points = derived_breadth(frames, prev_close)
        storage.write_json_atomic(target / "market_breadth.1m.json", {
            "schema_version": "market.breadth.replay.v1", "market": market, "mode": "replay", "provider": breadth_source,
            "day_key": day, "point_count": len(points), "series": points}, pretty=False, locked=False)
        day_names = storage.read_json(folder / "names.json") or {}
        names.update(day_names.get("names") or {})
        symbols = sorted({f["instrument"]["symbol"] for f in frames})
        pack_symbols.update(symbols)
        meta = {
            "trading_day": day, "trading_days": [day], "trading_day_count": 1, "interval": "1m", "symbols": symbols,
            "frame_count": len(frames), "provider": ",".join(sorted(providers)), "format": fmt,
            "daily_history": {"frame_count": len(daily), "last_trading_day": max((f["window"]["trading_day"] for f in daily), default=None)},
            "breadth": {"source": breadth_source, "point_count": len(points)},
            "provenance": {"source": "archive", "archive_file": f"{archive.market_dir(market)}/{day}/frames.1m.parquet",
                           "archive_sha256": _sha256(folder / "frames.1m.parquet"), "archive_closed": closed,
                           "archive_provenance": ((manifest.get("files") or {}).get("frames.1m.parquet") or {}).get("provenance")},
        }
        storage.write_json_atomic(target / "meta.json", meta, locked=False)
        day_rows.append({"day": day, "frames": len(frames), "symbols": len(symbols), "daily_bars": len(daily), "closed": closed})
    merged_history = sorted(history.values(), key=lambda f: (f["window"]["start_ts_ms"], f["instrument"]["symbol"]))
    history_name = f"frames.1d.{settings.market_daily_history_days}.json"
    storage.write_json_atomic(tmp / "history" / history_name, _frames_payload(merged_history, "archive"), pretty=False, locked=False)
    if not names:  # no breadth job archived the names: the live names file, if the host has one
        live = storage.read_json(settings.resolve(settings.live_symbol_names_path_cn)) or {}
        names = live.get("names") if isinstance(live.get("names"), dict) else {}
    pack_names = {s: names[s] for s in sorted(pack_symbols) if s in names}
    storage.write_json_atomic(tmp / "symbol_names.json", {"schema_version": "market.symbol_names.v1", "names": pack_names}, locked=False)
    summary = {
        "schema_version": PACK_SCHEMA,
        "market": market,
        "days": day_rows,
        "format": fmt,
        "daily_history_file": f"history/{history_name}",
        "daily_history_frames": len(merged_history),
        "names": len(pack_names),
        "provenance": {"built_by": "onlytrade-ops replay-pack build", "built_at": clock.now_iso(),
                       "archive_dir": display_path(settings, root)},
    }
    storage.write_json_atomic(tmp / "meta.json", summary, locked=False)
    return summary
