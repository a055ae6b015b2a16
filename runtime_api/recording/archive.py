"""The show-day archive: every bar the jobs collected, one Parquet file per market, day and interval.

    <ARCHIVE_DIR>/<market>/<day>/frames.1m.parquet     the day's 1m bars (zstd)
    <ARCHIVE_DIR>/<market>/<day>/frames.1d.parquet     the daily history the agents had that day
    <ARCHIVE_DIR>/<market>/<day>/archive.json          what the files hold; `closed` after the session

Appending during the session never rewrites data in place: each run first writes its bars as a new
part file (`parts/<interval>.<ingest ms>.<pid>.parquet`, atomically: temp file, fsync, rename),
then compacts the day file + parts into a new day file (atomic replace) and only then deletes the
merged parts. A crash at any point leaves the old day file or the new one, plus parts that the next
compaction merges again (latest ingest wins on (symbol, interval, start), so merging twice is
harmless). Readers compact nothing: `read_day` merges the day file and any parts left over.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from runtime_api.state import storage
from runtime_api.market.parquet_frames import frames_from_table, latest_wins, read_table, table_from_frames, write_table

MARKET_DIRS = {"CN-A": "cn-a", "US": "us"}
MANIFEST = "archive.json"
MANIFEST_SCHEMA = "onlytrade.archive_day.v1"


def market_dir(market: str) -> str:
    return MARKET_DIRS.get(market, market.lower())


def day_dir(archive_root: Path, market: str, day: str) -> Path:
    return Path(archive_root) / market_dir(market) / day


def day_file(archive_root: Path, market: str, day: str, interval: str = "1m") -> Path:
    return day_dir(archive_root, market, day) / f"frames.{interval}.parquet"


def _write_atomic(path: Path, table: pa.Table) -> None:
    # The writing job's own lock already serialises writers; readers only ever see whole files.
    buffer = io.BytesIO()
    write_table(table, buffer)
    storage.write_bytes_atomic(path, buffer.getvalue(), locked=False)


def _parts(folder: Path, interval: str) -> list[Path]:
    # ingest ms is zero-padded, so name order is write order
    return sorted((folder / "parts").glob(f"{interval}.*.parquet"))


def _merged(folder: Path, interval: str) -> tuple[pa.Table, list[Path]]:
    main = folder / f"frames.{interval}.parquet"
    parts = _parts(folder, interval)
    tables = [read_table(main)] if main.exists() else []
    tables += [read_table(p) for p in parts]
    return latest_wins(tables), parts


def append(archive_root: Path, market: str, day: str, frames: Iterable[dict[str, Any]], *, interval: str = "1m",
           ingest_ms: int, closed: bool = False, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add one run's bars of `day` (a part, then a compaction); `closed` marks the day complete. Returns the manifest."""
    folder = day_dir(archive_root, market, day)
    table = table_from_frames(f for f in frames if ((f.get("window") or {}).get("trading_day") == day))
    if table.num_rows:
        part = folder / "parts" / f"{interval}.{int(ingest_ms):015d}.{os.getpid()}.parquet"
        _write_atomic(part, table)
    return compact(archive_root, market, day, interval=interval, closed=closed, provenance=provenance)


def compact(archive_root: Path, market: str, day: str, *, interval: str = "1m", closed: bool = False,
            provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge the parts into the day file (atomic replace), then delete them; update archive.json."""
    folder = day_dir(archive_root, market, day)
    merged, parts = _merged(folder, interval)
    if merged.num_rows or parts:
        _write_atomic(folder / f"frames.{interval}.parquet", merged)
    for part in parts:
        part.unlink(missing_ok=True)
    manifest = storage.read_json(folder / MANIFEST) or {"schema_version": MANIFEST_SCHEMA, "market": market, "day": day, "files": {}}
    symbols = sorted(set(merged.column("symbol").to_pylist())) if merged.num_rows else []
    starts = merged.column("start_ts_ms").to_pylist() if merged.num_rows else []
    manifest["files"][f"frames.{interval}.parquet"] = {
        "rows": merged.num_rows,
        "symbols": symbols,
        "first_start_ts_ms": min(starts) if starts else None,
        "last_start_ts_ms": max(starts) if starts else None,
        "closed": bool(closed or (manifest["files"].get(f"frames.{interval}.parquet") or {}).get("closed")),
        **({"provenance": provenance} if provenance else {}),
    }
    manifest["closed"] = all(f.get("closed") for f in manifest["files"].values())
    storage.write_json_atomic(folder / MANIFEST, manifest, locked=False)
    return manifest


def replace_file(archive_root: Path, market: str, day: str, frames: Iterable[dict[str, Any]], *, interval: str,
                 provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a whole file at once (the daily history as of `day`): atomic, closed on write."""
    folder = day_dir(archive_root, market, day)
    _write_atomic(folder / f"frames.{interval}.parquet", latest_wins([table_from_frames(frames)]))
    return compact(archive_root, market, day, interval=interval, closed=True, provenance=provenance)


def read_day(archive_root: Path, market: str, day: str, interval: str = "1m") -> list[dict[str, Any]]:
    """The day's bars (day file + any parts a crash left), as market.bar.v1 frames; [] when absent."""
    folder = day_dir(archive_root, market, day)
    if not folder.is_dir():
        return []
    merged, _ = _merged(folder, interval)
    return frames_from_table(merged)


def manifest(archive_root: Path, market: str, day: str) -> dict[str, Any] | None:
    return storage.read_json(day_dir(archive_root, market, day) / MANIFEST)


def days(archive_root: Path, market: str) -> list[str]:
    folder = Path(archive_root) / market_dir(market)
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

