"""Fault tests: full disk on a real (small) tmpfs, torn files, stale temp files, bad numbers."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"


class SmallDisk:
    """A tmpfs of a few MB mounted in a temp dir: a disk that really fills up (ENOSPC)."""

    def __init__(self, path: Path):
        self.path = path
        self.filler = path / "filler.bin"

    def fill(self) -> int:
        """Take every free byte (big chunks, then smaller ones to the last byte); returns bytes taken."""
        taken = 0
        with open(self.filler, "ab", buffering=0) as fh:
            for size in (1 << 16, 1 << 12, 1 << 9, 1 << 6, 8, 1):
                chunk = b"\0" * size
                while True:
                    try:
                        written = fh.write(chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
                    taken += written or 0
                    if not written:
                        break
        return taken

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the ENOSPC tests run as root in CI)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
