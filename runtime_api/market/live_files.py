"""Live files written by the collectors: 1m frames per market, and JSON side files (overview, news, breadth).

Each file is re-read only when at least `refresh_ms` has passed since the last attempt and the
file has changed; a failed read keeps the last good data and records a short error (never a
path). Time comes from an injected `now_ms`, so freshness tests never sleep.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from runtime_api.market import sanity
from runtime_api.market.bars import DEFAULT_LIMIT, FrameIndex, clamp_limit, parse_batch
from runtime_api.state.storage import CorruptFileError

MIN_REFRESH_MS = 250


def wall_clock_ms() -> int:
    """The real clock, in epoch ms (the default `now_ms`)."""
    return int(time.time() * 1000)


class WatchedFile:
    """Change detection, rate limiting and last-error bookkeeping for one file; subclasses parse it."""

    def __init__(self, path: Path | str, *, refresh_ms: int, now_ms: Callable[[], int] | None, display_path: str | None):
        self.path = Path(path)
        self.display_path = display_path or self.path.name
        self.refresh_ms = max(MIN_REFRESH_MS, int(refresh_ms))
        self.now_ms = now_ms or wall_clock_ms
        self.last_attempt_ts_ms: int | None = None
        self.last_load_ts_ms: int | None = None
        self.last_mtime_ms: int | None = None
        self.last_error: str | None = None
        self.last_error_ts_ms: int | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def _accept(self, raw: bytes) -> None:
        """Parse the file's bytes and swap them in; raise to keep the last good data."""
        raise NotImplementedError

    def notice_change(self) -> None:
        """A watcher saw the file replaced: the next refresh() skips the rate limit (the stamp check stays)."""
        with self._lock:
            self.last_attempt_ts_ms = None

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if due and changed (or when forced); True when new data was loaded."""
        with self._lock:
            now = self.now_ms()
            if not force and self.last_attempt_ts_ms is not None and now - self.last_attempt_ts_ms < self.refresh_ms:
                return False
            self.last_attempt_ts_ms = now
            try:
                with open(self.path, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    # mtime alone misses a same-tick rewrite; os.replace also changes the inode.
                    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                    if not force and stamp == self._stamp:
                        return False
                    self._accept(fh.read())
            except FileNotFoundError:
                return self._fail(now, "file_not_found")
            except IsADirectoryError:
                return self._fail(now, "not_a_file")
            except CorruptFileError as exc:
                return self._fail(now, exc.reason)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                # Written by an external collector: a malformed payload must never escape refresh().
                return self._fail(now, f"invalid_payload: {type(exc).__name__}")
            except OSError as exc:
                return self._fail(now, f"unreadable: {exc.strerror or type(exc).__name__}")
            self._stamp = stamp
            self.last_mtime_ms = st.st_mtime_ns // 1_000_000
            self.last_load_ts_ms = now
            self.last_error = None
            self.last_error_ts_ms = None
            return True

    def _fail(self, now: int, reason: str) -> bool:
        self.last_error = reason
        self.last_error_ts_ms = now
        return False

    def _base_status(self) -> dict:
        return {
            "file": self.display_path,
            "refresh_ms": self.refresh_ms,
            "last_load_ts_ms": self.last_load_ts_ms,
            "last_attempt_ts_ms": self.last_attempt_ts_ms,
            "last_mtime_ms": self.last_mtime_ms,
            "last_error": self.last_error,
            "last_error_ts_ms": self.last_error_ts_ms,
        }


def checked_batch(raw: bytes, path: Path, *, now_ms: int, require_real: bool) -> dict:
    """A live frames file's batch, refused whole (CorruptFileError, the last good data stays) when a
    bar lies in the future beyond one bar of skew, or, with `require_real`, when it is not labelled
    mode "real"."""
    batch = parse_batch(raw, path)
    if require_real and sanity.not_real(batch):
        raise CorruptFileError(path, sanity.MODE_NOT_REAL)
    if sanity.future_frames(batch["frames"], now_ms):
        raise CorruptFileError(path, sanity.DATA_IN_FUTURE)
    return batch


class LiveFileFrameProvider(WatchedFile):
    """A live market.frames.v1 file (CN 1m, or US 1m + 1d), hot-reloaded and indexed.

    `require_real` (strict live mode) refuses a file not labelled mode "real"; a file with bars in
    the future is always refused (`data_in_future`)."""

    def __init__(
        self,
        path: Path | str,
        *,
        refresh_ms: int = 10_000,
        stale_ms: int = 180_000,
        now_ms: Callable[[], int] | None = None,
        display_path: str | None = None,
        require_real: bool = False,
    ):
        super().__init__(path, refresh_ms=refresh_ms, now_ms=now_ms, display_path=display_path)
        self.stale_after_ms = max(6 * self.refresh_ms, int(stale_ms))
        self.require_real = require_real
        self.index = FrameIndex()
        self.mode: str | None = None
        self.provider: str | None = None

    def _accept(self, raw: bytes) -> None:
        batch = checked_batch(raw, self.path, now_ms=self.now_ms(), require_real=self.require_real)
        index = FrameIndex(batch["frames"])
        first = next((f for f in batch["frames"] if isinstance(f, dict)), {})
        self.index = index
        self.mode = batch.get("mode") or first.get("mode")
        self.provider = batch.get("provider") or first.get("provider")

    def get_frames(self, symbol: str, interval: str = "1m", limit: int | None = DEFAULT_LIMIT) -> list[dict]:
        """The last `limit` bars (1..2000; None for all) of a symbol, refreshing the file first if due."""
        self.refresh()
        return self.index.frames(symbol, interval, None if limit is None else clamp_limit(limit))

    def symbols(self, interval: str = "1m") -> list[str]:
        """Symbols in the last good file for an interval."""
        return self.index.symbols(interval)

    def status(self) -> dict:
        """The §1.5 live_file status without paths, plus the newest bar's age (stale on either clock)."""
        now = self.now_ms()
        latest = self.index.latest_ts_ms()
        age = None if latest is None else max(0, now - latest)
        if self.last_load_ts_ms is None:
            stale_reason = "never_loaded"
        elif now - self.last_load_ts_ms > self.stale_after_ms:
            stale_reason = "file_not_updated"
        elif age is None:
            stale_reason = "no_frames"
        elif age > self.stale_after_ms:
            stale_reason = "data_too_old"
        else:
            stale_reason = None
        return {
            **self._base_status(),
            "stale_after_ms": self.stale_after_ms,
            "mode": self.mode,
            "provider": self.provider,
            "symbols_1m": self.index.symbols("1m"),
            "frame_count": len(self.index),
            "stale": stale_reason is not None,
            "stale_reason": stale_reason,
            "latest_ts_ms": latest,
            "data_age_ms": age,
        }


_TIMESTAMP_KEYS = ("as_of_ts_ms", "generated_at_ts_ms", "ts_ms", "as_of", "generated_at")


def payload_timestamp_ms(payload: dict) -> int | None:
    """The payload's own data timestamp (epoch s/ms or ISO 8601), if it carries one."""
    for key in _TIMESTAMP_KEYS:
        value = payload.get(key)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return int(value if value >= 1e11 else value * 1000)  # below 1e11 it is epoch seconds
        if isinstance(value, str) and value.strip():
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return int(parsed.timestamp() * 1000)
    return None


class LiveJsonFileProvider(WatchedFile):
    """A live JSON object file (market overview, news digest, breadth) with last-good semantics."""

    def __init__(
        self,
        path: Path | str,
        *,
        refresh_ms: int = 10_000,
        stale_ms: int = 180_000,
        now_ms: Callable[[], int] | None = None,
        display_path: str | None = None,
    ):
        super().__init__(path, refresh_ms=refresh_ms, now_ms=now_ms, display_path=display_path)
        self.stale_after_ms = max(self.refresh_ms, int(stale_ms))
        self.last_good: dict | None = None
        self.latest_ts_ms: int | None = None

    def _accept(self, raw: bytes) -> None:
        try:
            payload: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CorruptFileError(self.path, f"invalid_json: {str(exc)[:160]}") from exc
        if not isinstance(payload, dict):
            raise CorruptFileError(self.path, "invalid_payload: expected a JSON object")
        self.last_good = payload
        self.latest_ts_ms = payload_timestamp_ms(payload)

    def payload(self, force: bool = False) -> dict | None:
        """The last good payload, refreshing the file first if due."""
        self.refresh(force)
        return self.last_good

    def status(self) -> dict:
        """The live JSON status (stale on the file clock), with `has_last_good` and the payload's own timestamp."""
        now = self.now_ms()
        return {
            **self._base_status(),
            "stale_after_ms": self.stale_after_ms,
            "stale": self.last_load_ts_ms is None or now - self.last_load_ts_ms > self.stale_after_ms,
            "has_last_good": self.last_good is not None,
            "latest_ts_ms": self.latest_ts_ms,
            "data_age_ms": None if self.latest_ts_ms is None else max(0, now - self.latest_ts_ms),
        }
