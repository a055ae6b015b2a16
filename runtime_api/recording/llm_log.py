"""Every LLM exchange of a decision, per agent and day: `<LLM_RECORDINGS_DIR>/<agent>/<day>.jsonl`.

One line per call (`onlytrade.llm_exchange.v1`): the agent, the trading day and bar (the decision
clock: the replay bar's end, or the live clock), the request body (the key travels only in the
Authorization header, which is never recorded; the body is scrubbed of it anyway), the response
status and body, the latency and the outcome (`ok` or the failure reason). Days older than
`LLM_RECORDINGS_RETENTION_DAYS` (by when they were written: a replayed February day recorded
today is kept) are deleted at boot and whenever a new day's file starts.

`answer(agent, day, bar)` is what `REPLAY_LLM=recorded` reads: the last `ok` exchange recorded for
that agent, day and bar: a replayed decision's clock is a bar end; a live decision's is any time,
so a live exchange also answers for the newest bar it could see (its time floored to the minute).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from runtime_api.state import storage

log = logging.getLogger("onlytrade.recording")

SCHEMA = "onlytrade.llm_exchange.v1"
BAR_MS = 60_000
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
_AGENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class LlmExchangeLog:
    def __init__(self, directory: Path, *, retention_days: int = 30):
        self.directory = Path(directory)
        self.retention_days = max(0, int(retention_days))
        self._lock = threading.Lock()
        self._days_seen: set[str] = set()
        self._index: dict[tuple[str, str], tuple[tuple[int, int], dict[int, dict[str, Any]]]] = {}

    def _file(self, agent_id: str, day: str) -> Path:
        if not _AGENT.match(agent_id) or not re.match(r"^\d{4}-\d{2}-\d{2}$", day):
            raise ValueError(f"bad recording key {agent_id!r}/{day!r}")
        return self.directory / agent_id / f"{day}.jsonl"

    def append(self, record: dict[str, Any]) -> None:
        """Durably append one exchange; a new day first prunes what the retention no longer keeps."""
        day = record["day"]
        with self._lock:
            if day not in self._days_seen:
                self._days_seen.add(day)
                self.prune()
            storage.append_jsonl(self._file(record["agent_id"], day), {"schema_version": SCHEMA, **record})

    def read_day(self, agent_id: str, day: str) -> list[dict[str, Any]]:
        path = self._file(agent_id, day)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in raw.splitlines():
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn last line after a crash
            if isinstance(item, dict):
                out.append(item)
        return out

    def answer(self, agent_id: str, day: str, bar_ts_ms: int) -> dict[str, Any] | None:
        """The last `ok` exchange of that agent, day and bar (re-indexed when the file changes)."""
        path = self._file(agent_id, day)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._index.get((agent_id, day))
            if cached is None or cached[0] != stamp:
                ok = [r for r in self.read_day(agent_id, day) if r.get("outcome") == "ok" and isinstance(r.get("bar_ts_ms"), int)]
                by_bar = {r["bar_ts_ms"] - r["bar_ts_ms"] % BAR_MS: r for r in ok}  # live: the bar it saw last
                by_bar.update({r["bar_ts_ms"]: r for r in ok})  # an exact clock (a replayed bar end) wins
                self._index[(agent_id, day)] = cached = (stamp, by_bar)
        return cached[1].get(int(bar_ts_ms))

    def prune(self, now_s: float | None = None) -> list[Path]:
        """Delete day files last written more than the retention ago (0 keeps everything); returns them."""
        if self.retention_days <= 0 or not self.directory.is_dir():
            return []
        cutoff = (time.time() if now_s is None else now_s) - self.retention_days * 86_400
        removed = []
        for agent_dir in self.directory.iterdir():
            if not agent_dir.is_dir():
                continue
            for file in agent_dir.iterdir():
                if _DAY_FILE.match(file.name) and file.stat().st_mtime < cutoff:
                    file.unlink(missing_ok=True)
                    removed.append(file)
        if removed:
            log.info("llm recordings: removed %d day files older than %d days", len(removed), self.retention_days)
        return removed
