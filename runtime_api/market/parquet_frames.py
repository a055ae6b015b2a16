"""market.bar.v1 frames <-> one flat Arrow table (Parquet, zstd): the archive's and the packs' columnar form.

One row per bar; the nested bar keys become columns. `frames_from_table` rebuilds exactly the
frames the collectors write (schema_version, instrument, window, session, bar), so a replay pack
read from Parquet indexes the same as one read from JSON lines.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runtime_api.state.storage import CorruptFileError

BAR_SCHEMA_VERSION = "market.bar.v1"
COMPRESSION = "zstd"

SCHEMA = pa.schema([
    ("symbol", pa.string()),
    ("exchange", pa.string()),
    ("timezone", pa.string()),
    ("currency", pa.string()),
    ("market", pa.string()),
    ("mode", pa.string()),
    ("provider", pa.string()),
    ("interval", pa.string()),
    ("start_ts_ms", pa.int64()),
    ("end_ts_ms", pa.int64()),
    ("trading_day", pa.string()),
    ("event_ts_ms", pa.int64()),
    ("ingest_ts_ms", pa.int64()),
    ("phase", pa.string()),
    ("is_halt", pa.bool_()),
    ("is_partial", pa.bool_()),
    ("open", pa.float64()),
    ("high", pa.float64()),
    ("low", pa.float64()),
    ("close", pa.float64()),
    ("volume_shares", pa.float64()),
    ("turnover_cny", pa.float64()),
    ("vwap", pa.float64()),
])
KEY = ("symbol", "interval", "start_ts_ms")


def _row(frame: dict[str, Any]) -> dict[str, Any] | None:
    instrument, window = frame.get("instrument") or {}, frame.get("window") or {}
    session, bar = frame.get("session") or {}, frame.get("bar") or {}
    if not isinstance(instrument, dict) or not isinstance(window, dict) or not isinstance(bar, dict):
        return None
    symbol, start = instrument.get("symbol"), window.get("start_ts_ms")
    if not isinstance(symbol, str) or not symbol or not isinstance(start, int) or isinstance(start, bool):
        return None
    return {
        "symbol": symbol,
        "exchange": instrument.get("exchange"),
        "timezone": instrument.get("timezone"),
        "currency": instrument.get("currency"),
        "market": frame.get("market"),
        "mode": frame.get("mode"),
        "provider": frame.get("provider"),
        "interval": frame.get("interval"),
        "start_ts_ms": start,
        "end_ts_ms": window.get("end_ts_ms"),
        "trading_day": window.get("trading_day"),
        "event_ts_ms": frame.get("event_ts_ms"),
        "ingest_ts_ms": frame.get("ingest_ts_ms"),
        "phase": (session or {}).get("phase"),
        "is_halt": bool((session or {}).get("is_halt")),
        "is_partial": bool((session or {}).get("is_partial")),
        **{k: _num(bar.get(k)) for k in ("open", "high", "low", "close", "volume_shares", "turnover_cny", "vwap")},
    }


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def table_from_frames(frames: Iterable[dict[str, Any]]) -> pa.Table:
    rows = [r for r in (_row(f) for f in frames if isinstance(f, dict)) if r is not None]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _plain(value: float | None) -> int | float | None:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def frames_from_table(table: pa.Table) -> list[dict[str, Any]]:
    frames = []
    for seq, r in enumerate(table.select([f.name for f in SCHEMA]).to_pylist(), start=1):
        frames.append({
            "schema_version": BAR_SCHEMA_VERSION,
            "market": r["market"],
            "mode": r["mode"],
            "provider": r["provider"],
            "feed": "bars",
            "seq": seq,
            "event_ts_ms": r["event_ts_ms"],
            "ingest_ts_ms": r["ingest_ts_ms"],
            "instrument": {"symbol": r["symbol"], "exchange": r["exchange"], "timezone": r["timezone"], "currency": r["currency"]},
            "interval": r["interval"],
            "window": {"start_ts_ms": r["start_ts_ms"], "end_ts_ms": r["end_ts_ms"], "trading_day": r["trading_day"]},
            "session": {"phase": r["phase"], "is_halt": r["is_halt"], "is_partial": r["is_partial"]},
            "bar": {"open": r["open"], "high": r["high"], "low": r["low"], "close": r["close"],
                    "volume_shares": _plain(r["volume_shares"]), "turnover_cny": r["turnover_cny"], "vwap": r["vwap"]},
        })
    return frames


def latest_wins(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate (oldest first) and keep the last row per (symbol, interval, start), sorted by (start, symbol)."""
    if not tables:
        return SCHEMA.empty_table()
    merged = pa.concat_tables([t.select([f.name for f in SCHEMA]).cast(SCHEMA) for t in tables])
    order = pa.array(range(merged.num_rows), pa.int64())
    merged = merged.append_column("_order", order)
    last = merged.group_by(list(KEY), use_threads=False).aggregate([("_order", "max")])
    keep = pc.is_in(merged["_order"], value_set=last["_order_max"])
    kept = merged.filter(keep).drop_columns(["_order"])
    return kept.sort_by([("start_ts_ms", "ascending"), ("symbol", "ascending"), ("interval", "ascending")])


def write_table(table: pa.Table, fh: Any) -> None:
    pq.write_table(table, fh, compression=COMPRESSION)


def read_table(path: Path | str) -> pa.Table:
    try:
        return pq.read_table(path, schema=SCHEMA)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CorruptFileError(Path(path), f"invalid_parquet: {str(exc)[:160]}") from exc


def frames_from_bytes(raw: bytes, path: Path) -> list[dict[str, Any]]:
    """The frames of a Parquet file's bytes (what WatchedFile hands a parser); CorruptFileError when unreadable."""
    try:
        table = pq.read_table(io.BytesIO(raw), schema=SCHEMA)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptFileError(path, f"invalid_parquet: {str(exc)[:160]}") from exc
    return frames_from_table(table)
