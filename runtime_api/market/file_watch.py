"""Pick up a replaced live file at once: watchfiles (inotify) on the live files' folders.

The collectors replace a live file atomically (temp file, `os.replace`), which inotify reports as
the file being added. The watcher then lets the file's next `refresh()` skip its rate limit (the
(mtime, size, inode) check still decides whether anything changed) and reloads it in the worker
thread, so the runtime serves the new bar within milliseconds instead of up to
`LIVE_FILE_REFRESH_MS` later. The mtime polling stays as the fallback: a watch that cannot start
(no folder yet, inotify limits) or stops is logged, shown in the status, and costs only latency.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import watchfiles

from runtime_api.market.live_files import WatchedFile

log = logging.getLogger("onlytrade.live_files")

DEBOUNCE_MS = 20  # a replace is one event; group only what arrives together
STEP_MS = 10


class LiveFileWatcher:
    def __init__(self, files: Iterable[WatchedFile], reload: Callable[[list[WatchedFile]], Awaitable[Any]]):
        self.files: dict[str, WatchedFile] = {}
        for f in files:
            self.files[str(Path(f.path).resolve())] = f
        self.reload = reload
        self.active = False
        self.events = 0
        self.reloads = 0
        self.error: str | None = None
        self._stop: anyio.Event | None = None

    def folders(self) -> list[str]:
        return sorted({str(Path(p).parent) for p in self.files if Path(p).parent.is_dir()})

    def status(self) -> dict[str, Any]:
        return {"enabled": True, "active": self.active, "folders": len(self.folders()), "files": len(self.files),
                "events": self.events, "reloads": self.reloads, "error": self.error}

    async def run(self) -> None:
        """Watch until stopped or cancelled; any failure falls back to polling (logged once)."""
        folders = self.folders()
        if not folders:
            self.error = "no_live_folder"
            log.warning("live files: no folder to watch yet; mtime polling only")
            return
        self._stop = anyio.Event()
        try:
            self.active = True
            async for changes in watchfiles.awatch(*folders, debounce=DEBOUNCE_MS, step=STEP_MS, recursive=False,
                                                   stop_event=self._stop, watch_filter=lambda _c, p: p in self.files):
                hit = {self.files[p] for change, p in changes if change != watchfiles.Change.deleted and p in self.files}
                self.events += 1
                if hit:
                    for f in hit:
                        f.notice_change()
                    await self.reload(sorted(hit, key=lambda f: str(f.path)))
                    self.reloads += 1
        except Exception as exc:  # inotify watch limit, a folder removed under us: polling still works
            self.error = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("live files: watching stopped (%s); mtime polling only", self.error)
        finally:
            self.active = False

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
