"""The local side of ops: the runtime's settings under ONLYTRADE_ROOT, its instance lock, file digests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from runtime_api import clock
from runtime_api.settings import Settings, SettingsError

from .exits import EXIT_USAGE, OpsError

INSTANCE_LOCK = "runtime.instance.lock"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The runtime's settings as it would load them here (env, then .env.local, then .env)."""
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        raise OpsError(EXIT_USAGE, f"invalid setting {exc}") from None
    clock.configure(settings)  # the freshness checks read the same clock as the runtime
    return settings


def instance_lock_path(settings: Settings) -> Path:
    return settings.resolve(settings.runtime_state_dir) / INSTANCE_LOCK


def lock_holders(path: Path) -> list[int] | None:
    """PIDs holding a flock on `path`, read from /proc/locks without touching the lock; None if unknown."""
    try:
        st = os.stat(path)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    pids = []
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:567 0 EOF" (a blocked waiter has "->" after the number)
        if "->" in parts:
            continue
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            dev_major, dev_minor, inode = parts[5].split(":")
            if int(inode) == st.st_ino and int(dev_major, 16) == major and int(dev_minor, 16) == minor:
                pids.append(int(parts[4]))
        except ValueError:
            continue
    return sorted(set(pids))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def display(settings: Settings, path: Path) -> str:
    """A path relative to the runtime root when it is under it (as the API shows paths)."""
    try:
        return Path(path).resolve().relative_to(settings.root).as_posix()
    except ValueError:
        return str(path)
