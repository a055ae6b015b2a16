"""What the data jobs archive after each committed run (called from their `Output.after_commit`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from runtime_api.state import storage
from runtime_api.recording import archive
from runtime_api.market.calendar import is_trading_day, session_bounds_ms, trading_day_of


def archive_intraday(settings: Any, market: str, frames: list[dict[str, Any]], *, now_ms: int, provider: str) -> dict[str, Any]:
    """Append this run's bars to their days; a day is closed once a run happens after its last session."""
    root = settings.resolve(settings.archive_dir)
    days = sorted({(f.get("window") or {}).get("trading_day") for f in frames} - {None})
    rows, closed = {}, {}
    for day in days:
        bounds = session_bounds_ms(day, market)
        manifest = archive.append(root, market, day, frames, ingest_ms=now_ms, closed=bool(bounds) and now_ms >= bounds[-1][1],
                                  provenance={"job": "frames_collector", "provider": provider})
        entry = manifest["files"]["frames.1m.parquet"]
        rows[day], closed[day] = entry["rows"], entry["closed"]
    return {"archive_rows": rows, "archive_closed": closed}


def serving_day(now_ms: int, market: str) -> str:
    """The trading day a daily history collected now serves: today before its close, else the next one."""
    today = date.fromisoformat(trading_day_of(now_ms, market))
    bounds = session_bounds_ms(today, market) if is_trading_day(today, market) else []
    day = today if bounds and now_ms < bounds[-1][1] else today + timedelta(days=1)
    for _ in range(31):
        if is_trading_day(day, market):
            break
        day += timedelta(days=1)
    return day.isoformat()


def archive_daily(settings: Any, market: str, frames: list[dict[str, Any]], *, now_ms: int, provider: str) -> dict[str, Any]:
    """The daily history as the agents have it on the day it serves (bars before that day): one closed file."""
    day = serving_day(now_ms, market)
    root = settings.resolve(settings.archive_dir)
    before = [f for f in frames if ((f.get("window") or {}).get("trading_day") or "") < day]
    manifest = archive.replace_file(root, market, day, before, interval="1d",
                                    provenance={"job": "daily_history", "provider": provider})
    return {"archive_daily_day": day, "archive_daily_rows": manifest["files"]["frames.1d.parquet"]["rows"]}


def archive_breadth(settings: Any, market: str, breadth: dict[str, Any], names: dict[str, str], *, now_ms: int,
                    provider: str) -> dict[str, Any]:
    """One breadth point per run (`market_breadth.1m.jsonl`, durable append) and the day's names (once)."""
    day = trading_day_of(now_ms, market)
    folder = archive.day_dir(settings.resolve(settings.archive_dir), market, day)
    point = {"ts_ms": now_ms, "trading_day": day, "breadth": breadth, "provider": provider}
    storage.append_jsonl(folder / "market_breadth.1m.jsonl", point)
    names_file = folder / "names.json"
    if names and not names_file.exists():
        storage.write_json_atomic(names_file, {"schema_version": "market.symbol_names.v1", "provider": provider,
                                               "as_of_ts_ms": now_ms, "names": names}, locked=False)
    return {"archive_breadth_day": day}
