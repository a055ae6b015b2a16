"""Live data freshness: how old the newest *data* in each live file is.

The one freshness module: the `check-live-freshness` ops command, the runtime status and the live
preflight all call `run_checks(settings, now_ms)`. Unlike the Node script (which read file mtimes,
W20), a file's age comes from the newest data timestamp inside it, so a job that rewrites an old
payload, or a `touch`, cannot make stale data look fresh. The mtime is used only for payloads that
carry no timestamp at all, and `age_source` says which was used.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from runtime_api.market import sanity, session_freshness
from runtime_api.settings import Settings, display_path

# `check-live-freshness --strict` exits with this when a required check fails.
EXIT_REQUIRED_STALE = 1  # a failed check, as every onlytrade-ops check (2 means usage/refused)

# Error codes a check can carry (`error` is null when the file was judged on its age alone).
FILE_NOT_FOUND = "file_not_found"
NOT_A_FILE = "not_a_file"
UNREADABLE = "unreadable"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
NO_DATA_TIMESTAMP = "no_data_timestamp"
NOT_MARKET_FRAMES = "not_market_frames"  # a frames file without a `frames` list
DATA_IN_FUTURE = sanity.DATA_IN_FUTURE
MODE_NOT_REAL = sanity.MODE_NOT_REAL

# How a file's age is judged (FileCheck.kind).
AGE = "age"  # now - newest data
SESSION = "session"  # against the CN session: before the open, data ending at the last close is fresh
DAILY = "daily"  # daily bars: the newest must be the previous trading day

# Keys tried, in order, for the data timestamp of a non-frames payload.
_PAYLOAD_TS_KEYS = ("latest_ts_ms", "as_of_ts_ms", "ts_ms", "generated_at_ts_ms", "generated_at")


@dataclass(frozen=True)
class FileCheck:
    """One live file: where its path and its stale window live in Settings, and whether it gates `ok`."""

    label: str
    path_setting: str
    max_age_setting: str
    required: bool
    kind: str = AGE
    frames: bool = False  # a market.frames.v1 file: must hold a `frames` list, no bar in the future


# Node defaults (check_live_data_freshness.py): CN frames/overview/breadth 180 s and CN news 12 h are
# required; the US files are optional. The windows come from the same settings the live providers
# use, whose defaults are exactly those values.
# The CN files written only in trading hours (frames, overview, breadth) are judged against the
# session, so they are fresh before the open when they end at the last close; the daily history
# must end on the previous trading day.
DEFAULT_CHECKS: tuple[FileCheck, ...] = (
    FileCheck("cn_a_frames", "live_frames_path_cn", "live_file_stale_ms", True, SESSION, frames=True),
    FileCheck("cn_a_daily", "live_daily_path_cn", "live_file_stale_ms", True, DAILY, frames=True),
    FileCheck("cn_a_market_overview", "market_overview_path_cn", "market_overview_stale_ms", True, SESSION),
    FileCheck("cn_a_news_digest", "news_digest_path_cn", "news_digest_stale_ms", True),
    FileCheck("cn_a_market_breadth", "market_breadth_path_cn", "market_breadth_stale_ms", True, SESSION),
    FileCheck("us_frames", "live_frames_path_us", "live_file_stale_ms", False, frames=True),
    FileCheck("us_market_overview", "market_overview_path_us", "market_overview_stale_ms", False),
    FileCheck("us_news_digest", "news_digest_path_us", "news_digest_stale_ms", False),
    FileCheck("us_market_breadth", "market_breadth_path_us", "market_breadth_stale_ms", False),
)


def _ts_value_ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if value > 0 else None
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None  # a naive wall-clock string is ambiguous; do not guess its zone
        return int(parsed.timestamp() * 1000)
    return None


def frames_latest_ts_ms(frames: list[Any]) -> int | None:
    """Newest bar end (`window.end_ts_ms`, else `event_ts_ms`) over a market.frames.v1 list."""
    newest: int | None = None
    for frame in frames:
        if not isinstance(frame, dict):
            continue
        window = frame.get("window")
        ts = window.get("end_ts_ms") if isinstance(window, dict) else None
        if not isinstance(ts, (int, float)) or isinstance(ts, bool):
            ts = frame.get("event_ts_ms")
            if not isinstance(ts, (int, float)) or isinstance(ts, bool):
                continue
        if newest is None or ts > newest:
            newest = int(ts)
    return newest


def payload_latest_ts_ms(payload: dict[str, Any]) -> int | None:
    """The newest data timestamp a payload carries, or None when it has none."""
    frames = payload.get("frames")
    if isinstance(frames, list):
        return frames_latest_ts_ms(frames)
    for key in _PAYLOAD_TS_KEYS:
        ts = _ts_value_ms(payload.get(key))
        if ts is not None:
            return ts
    return None


@dataclass(frozen=True)
class _PayloadInfo:
    error: str | None
    schema: str | None = None
    generated_at: Any = None
    latest_ts_ms: int | None = None
    is_frames: bool = False
    newest_trading_day: str | None = None
    mode_real: bool = True


class FreshnessCache:
    """Remembers what each file held, keyed on its (inode, size, mtime): a long-lived caller (the
    runtime) re-parses a 20k-frame file only when it changed. Not thread-safe; one per caller."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int, int], _PayloadInfo]] = {}

    def get(self, path: Path, st: os.stat_result) -> _PayloadInfo | None:
        entry = self._entries.get(str(path))
        return entry[1] if entry and entry[0] == (st.st_ino, st.st_size, st.st_mtime_ns) else None

    def put(self, path: Path, st: os.stat_result, info: _PayloadInfo) -> None:
        self._entries[str(path)] = ((st.st_ino, st.st_size, st.st_mtime_ns), info)


def _read_payload_info(path: Path) -> _PayloadInfo:
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return _PayloadInfo(UNREADABLE)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _PayloadInfo(INVALID_JSON)
    if not isinstance(payload, dict):
        return _PayloadInfo(NOT_AN_OBJECT)
    schema = payload.get("schema_version")
    generated_at = payload.get("generated_at")
    if not isinstance(generated_at, (str, int, float)) or isinstance(generated_at, bool):
        generated_at = None
    frames = payload.get("frames")
    is_frames = isinstance(frames, list)
    days = [sanity.trading_day(f) for f in frames if isinstance(f, dict)] if is_frames else []
    return _PayloadInfo(
        error=None,
        schema=schema if isinstance(schema, str) else None,
        generated_at=generated_at,
        latest_ts_ms=payload_latest_ts_ms(payload),
        is_frames=is_frames,
        newest_trading_day=max((d for d in days if d), default=None),
        mode_real=not sanity.not_real(payload) if is_frames else True,
    )


def check_file(
    path: Path,
    *,
    label: str,
    required: bool,
    max_age_ms: int,
    now_ms: int,
    display_path: str,
    cache: FreshnessCache | None = None,
    kind: str = AGE,
    frames: bool = False,
    require_real: bool = False,
) -> dict[str, Any]:
    """Check one live file; `ok` means it exists, parses and its newest data is fresh for `kind`.

    A `frames` file must hold a frames list and no bar ending more than one bar after `now_ms`
    (`data_in_future`); with `require_real` (strict mode) it must be labelled mode "real"."""
    row: dict[str, Any] = {
        "label": label,
        "file": display_path,
        "required": required,
        "max_age_sec": max_age_ms // 1000 if max_age_ms % 1000 == 0 else max_age_ms / 1000,
        "exists": False,
        "ok": False,
        "stale": True,
        "age_sec": None,
        "age_source": None,
        "mtime_epoch": None,
        "size_bytes": None,
        "error": None,
        "payload_schema": None,
        "payload_generated_at": None,
        "payload_latest_ts_ms": None,
    }
    try:
        st = os.stat(path)
    except FileNotFoundError:
        row["error"] = FILE_NOT_FOUND
        return row
    except OSError:
        row["error"] = UNREADABLE
        return row
    if not stat.S_ISREG(st.st_mode):
        row["error"] = NOT_A_FILE
        return row
    row.update(exists=True, mtime_epoch=st.st_mtime, size_bytes=st.st_size)

    info = cache.get(path, st) if cache is not None else None
    if info is None:
        info = _read_payload_info(path)
        if cache is not None:
            cache.put(path, st, info)
    if info.error is not None:
        row["error"] = info.error
        return row
    row.update(payload_schema=info.schema, payload_generated_at=info.generated_at, payload_latest_ts_ms=info.latest_ts_ms)
    if frames and not info.is_frames:
        row["error"] = NOT_MARKET_FRAMES
        return row
    if frames and require_real and not info.mode_real:
        row["error"] = MODE_NOT_REAL
        return row

    if info.latest_ts_ms is not None:
        age_ms = now_ms - info.latest_ts_ms
        row["age_source"] = "data"
        if frames and age_ms < -(86_400_000 if kind == DAILY else 60_000):
            row["error"] = DATA_IN_FUTURE  # beyond one bar of clock skew
        elif kind == SESSION:
            age_ms = session_freshness.intraday_age_ms(info.latest_ts_ms, now_ms, max_age_ms)
    else:
        age_ms = now_ms - int(st.st_mtime * 1000)
        row["age_source"] = "mtime"
        if info.is_frames:
            # A frames file always has bar times; one without any has no data to be fresh about.
            row["error"] = NO_DATA_TIMESTAMP
    row["age_sec"] = round(max(0, age_ms) / 1000, 3)
    if kind == DAILY:
        row["newest_trading_day"] = info.newest_trading_day
        row["expected_trading_day"] = session_freshness.previous_trading_day(now_ms)
        row["stale"] = not session_freshness.daily_fresh(info.newest_trading_day, now_ms)
    else:
        row["stale"] = age_ms > max_age_ms
    row["ok"] = row["error"] is None and not row["stale"]
    return row


def run_checks(
    settings: Settings,
    now_ms: int,
    checks: tuple[FileCheck, ...] = DEFAULT_CHECKS,
    *,
    cache: FreshnessCache | None = None,
) -> dict[str, Any]:
    """Run every check; `ok` is true when no required check fails. Pass a FreshnessCache when calling repeatedly."""
    rows = []
    for spec in checks:
        path = settings.resolve(getattr(settings, spec.path_setting))
        rows.append(
            check_file(
                path,
                label=spec.label,
                required=spec.required,
                max_age_ms=int(getattr(settings, spec.max_age_setting)),
                now_ms=now_ms,
                display_path=display_path(settings, path),
                cache=cache,
                kind=spec.kind,
                frames=spec.frames,
                require_real=settings.strict_live_mode,
            )
        )
    required_fail = sum(1 for r in rows if r["required"] and not r["ok"])
    optional_fail = sum(1 for r in rows if not r["required"] and not r["ok"])
    return {
        "ts_ms": now_ms,
        "phase": session_freshness.phase(now_ms),
        "ok": required_fail == 0,
        "required_fail_count": required_fail,
        "optional_fail_count": optional_fail,
        "checks": rows,
    }


def exit_code(report: dict[str, Any], *, strict: bool) -> int:
    """What `check-live-freshness` exits with: 1 under --strict when a required check fails, else 0."""
    return EXIT_REQUIRED_STALE if strict and not report["ok"] else 0
