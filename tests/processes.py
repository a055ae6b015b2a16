"""Helpers for the real processes the tests start (runtime, edges, nginx, redis-server)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def stop_process(proc: subprocess.Popen | None, grace_s: float = 10.0) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL: a test never leaves a server behind."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def up_or_stopped(wait: Callable[[], T], stop: Callable[[], object]) -> T:
    """`wait()` until the process answers; if it raises (never ready, exited), stop the process
    first: one whose start failed has no caller left to stop it, and would run on after the test."""
    try:
        return wait()
    except BaseException:
        stop()
        raise
