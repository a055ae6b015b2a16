"""The replay position (day, cursor, paused) on disk, so a restart resumes where the snapshots were written.

Saved atomically beside the runtime state before each decision round, on every cursor control and
at shutdown. A round's snapshots are therefore never ahead of the saved position: after a crash the
replay resumes at (or just before) the bar the last snapshots were decided on, never at day 1 with
positions bought "later". The bar is identified by its timestamp, not only its index, so a changed
replay pack never lands the cursor on an unrelated bar.
"""

from __future__ import annotations

import bisect
import logging
from datetime import datetime, timezone
from pathlib import Path

from ..market.replay import ReplayEngine
from .storage import CorruptFileError, read_json, write_json_atomic

log = logging.getLogger("onlytrade.replay")

FILE_NAME = "replay-position.json"


def path_in(state_dir: Path) -> Path:
    return Path(state_dir) / FILE_NAME


def save(path: Path, replay: ReplayEngine) -> None:
    """Write the cursor, its bar's start, trading day and pause (blocking: call from a worker thread)."""
    write_json_atomic(path, {
        "cursor_index": replay.cursor,
        "current_ts_ms": replay.current_ts_ms(),
        "trading_day": replay.trading_day(),
        "timeline_length": len(replay.timeline),
        "running": replay.running,
        "loop_count": replay.loops,
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    })


def restore(path: Path, replay: ReplayEngine) -> str | None:
    """Move the cursor to the saved bar; returns what happened for the boot log (None: nothing saved)."""
    try:
        saved = read_json(path)
    except CorruptFileError as exc:
        log.error("unreadable %s (%s): replay starts at the warmup cursor", path.name, exc.reason)
        return "unreadable"
    if not isinstance(saved, dict) or not replay.timeline:
        return None
    ts = saved.get("current_ts_ms")
    if not isinstance(ts, int) or isinstance(ts, bool):
        log.error("%s has no current_ts_ms: replay starts at the warmup cursor", path.name)
        return "invalid"
    index = bisect.bisect_left(replay.timeline, ts)
    if index >= len(replay.timeline) or replay.timeline[index] != ts:
        log.warning("saved replay bar %s is not in this replay pack: replay starts at the warmup cursor", ts)
        return "not_in_pack"
    replay.set_cursor(index)
    loops = saved.get("loop_count")
    replay.loops = loops if isinstance(loops, int) and not isinstance(loops, bool) and loops >= 0 else 0
    if saved.get("running") is False:
        replay.pause()  # paused by an operator (or a factory reset): stays paused until resumed
    log.info(
        "replay resumes at %s bar %s (cursor %s%s)", replay.trading_day(), replay.status()["day_bar_index"], index,
        ", paused" if not replay.running else "",
    )
    return "restored"
