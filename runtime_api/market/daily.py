"""Daily history (`market.frames.v1`, 1d bars): hot-reloaded when the file changes, never read ahead of a clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runtime_api.market.bars import DEFAULT_LIMIT, FrameIndex, clamp_limit, parse_batch
from runtime_api.market.live_files import WatchedFile, checked_batch


class DailyHistory(WatchedFile):
    """The daily bars file; re-checked at most every `check_ms`, keeping the last good data on a bad reload.

    `live` (the job-written `LIVE_DAILY_PATH_CN`) refuses a file with bars in the future, and with
    `require_real` one not labelled mode "real", as the live frames files."""

    def __init__(
        self,
        path: Path | str,
        *,
        now_ms: Callable[[], int] | None = None,
        check_ms: int = 1000,
        display_path: str | None = None,
        live: bool = False,
        require_real: bool = False,
    ):
        super().__init__(path, refresh_ms=check_ms, now_ms=now_ms, display_path=display_path)
        self.live = live
        self.require_real = require_real
        self.index = FrameIndex()
        self.mode: str | None = None
        self.provider: str | None = None
        self.refresh(force=True)

    def _accept(self, raw: bytes) -> None:
        if self.live:
            batch = checked_batch(raw, self.path, now_ms=self.now_ms(), require_real=self.require_real)
        else:
            batch = parse_batch(raw, self.path)
        self.index = FrameIndex(batch["frames"])
        self.mode = batch.get("mode") or "real"
        self.provider = batch.get("provider") or "daily-history"

    def frames(self, symbol: str, limit: int = DEFAULT_LIMIT, until_ts_ms: int | None = None) -> list[dict]:
        """The last `limit` (1..2000) daily bars of a symbol whose window ends at or before `until_ts_ms`."""
        self.refresh()
        return self.index.frames(symbol, "1d", clamp_limit(limit), until_ts_ms=until_ts_ms)

    def symbols(self) -> list[str]:
        """Symbols with daily bars (after a due reload check)."""
        self.refresh()
        return self.index.symbols("1d")

    def status(self) -> dict:
        """Load and error bookkeeping, the newest bar end and the symbols; never an absolute path."""
        latest = self.index.latest_ts_ms()
        return {
            **self._base_status(),
            "mode": self.mode,
            "provider": self.provider,
            "symbols": self.index.symbols("1d"),
            "frame_count": len(self.index),
            "latest_ts_ms": latest,
        }
