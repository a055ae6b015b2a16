"""The version and git commit this process runs, resolved once at boot.

The commit comes from, in order: `ONLYTRADE_GIT_COMMIT` (set by a deploy), the checkout's own
`.git` read directly (no git binary needed), the `BUILD_COMMIT` file `make install` records
beside the package, else "unknown". Never raises: a missing or odd .git is simply "unknown".
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
RECORDED = PACKAGE_DIR / "BUILD_COMMIT"
_SHA = re.compile(r"^[0-9a-f]{40}$")


def version() -> str:
    try:
        return metadata.version("onlytrade-runtime")
    except metadata.PackageNotFoundError:
        return "unknown"


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # a worktree: "gitdir: <path>"
            text = candidate.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text[7:].strip())
                return target if target.is_absolute() else (folder / target).resolve()
    return None


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        target = Path(common.read_text().strip())
        return target if target.is_absolute() else (git_dir / target).resolve()
    return git_dir


def commit_from_git(start: Path) -> str | None:
    """HEAD's commit read from the .git folder (loose ref or packed-refs); None when unknown."""
    try:
        git_dir = _git_dir(start)
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text().strip()
        if _SHA.match(head):
            return head
        if not head.startswith("ref:"):
            return None
        ref = head[4:].strip()
        for base in (git_dir, _common_dir(git_dir)):
            loose = base / ref
            if loose.is_file():
                sha = loose.read_text().strip()
                return sha if _SHA.match(sha) else None
        packed = _common_dir(git_dir) / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
                    return parts[0]
    except OSError:
        return None
    return None


def commit(environ=None) -> str:
    env = os.environ if environ is None else environ
    given = str(env.get("ONLYTRADE_GIT_COMMIT") or "").strip()
    if given:
        return given[:64]
    found = commit_from_git(PACKAGE_DIR)
    if found:
        return found
    try:
        recorded = RECORDED.read_text().strip()
    except OSError:
        recorded = ""
    return recorded[:64] if recorded else "unknown"


def build_info(environ=None) -> dict:
    return {"version": version(), "commit": commit(environ)}
