"""Housekeeping of the state directories: stale temp files at boot, backup retention.

A process killed between writing a temp file and renaming it (storage.write_bytes_atomic) leaves
`.<name>.<pid>.<hex>.tmp` behind; nothing else ever reads it. Backups are made before every reset
and would otherwise pile up forever (thousands of folders after a season of resets).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("onlytrade.state")

# storage.write_bytes_atomic's naming: f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
TEMP_RE = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")
BACKUP_PREFIX = "agent-memory-"
# A temp file of a live process other than this one (the ops CLI) is left alone unless this old.
LIVE_PID_GRACE_S = 3600.0
MAX_WALK_DEPTH = 3


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _walk(directory: Path, depth: int) -> Iterable[os.DirEntry]:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if depth < MAX_WALK_DEPTH:
                yield from _walk(Path(entry.path), depth + 1)
        else:
            yield entry


def remove_stale_temp_files(dirs: Iterable[Path], *, now: float | None = None) -> list[Path]:
    """Delete the atomic-write temp files under `dirs` that no running writer owns; returns them."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    seen: set[Path] = set()
    for directory in dirs:
        directory = Path(directory)
        if directory in seen or not directory.is_dir():
            continue
        seen.add(directory)
        for entry in _walk(directory, 0):
            match = TEMP_RE.match(entry.name)
            if not match:
                continue
            pid = int(match.group(1))
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if pid == os.getpid() or (_pid_alive(pid) and age < LIVE_PID_GRACE_S):
                continue
            try:
                os.unlink(entry.path)
            except OSError as exc:
                log.warning("could not remove stale temp file %s: %s", entry.name, exc.strerror or exc)
                continue
            removed.append(Path(entry.path))
    if removed:
        log.warning("removed %d stale temp file(s) left by killed writers", len(removed))
    return removed


def prune_backups(backup_dir: Path, *, keep_last: int, max_age_days: float, now: float | None = None) -> list[Path]:
    """Delete backup folders beyond the newest `keep_last` or older than `max_age_days` (0 turns
    either rule off). The newest backup is always kept: it is the way back from the last reset."""
    backup_dir = Path(backup_dir)
    if not backup_dir.is_dir() or (keep_last <= 0 and max_age_days <= 0):
        return []
    now = time.time() if now is None else now
    # Folder names carry a UTC stamp (memory._stamp), so name order is age order.
    folders = sorted((p for p in backup_dir.glob(BACKUP_PREFIX + "*") if p.is_dir()), key=lambda p: p.name, reverse=True)
    removed = []
    for rank, folder in enumerate(folders):
        if rank == 0:
            continue
        too_many = keep_last > 0 and rank >= keep_last
        try:
            too_old = max_age_days > 0 and now - folder.stat().st_mtime > max_age_days * 86400
        except OSError:
            continue
        if too_many or too_old:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("backup retention removed %d folder(s) (keep last %d, max age %s days)", len(removed), keep_last, max_age_days)
    return removed


def state_dirs(settings) -> list[Path]:
    """Every directory the runtime writes state into (never the live data the jobs write)."""
    s = settings
    return [s.resolve(p) for p in (s.runtime_state_dir, s.agent_memory_dir, s.decisions_dir, s.decision_audit_base_dir,
                                   s.backups_dir)] + [s.resolve(s.kill_switch_path).parent, s.resolve(s.agent_registry_path).parent]
