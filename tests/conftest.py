"""Shared fixtures: every test runs against a temporary ONLYTRADE_ROOT."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A temporary runtime root holding the shipped agents and replay data (copied, never shared)."""
    shutil.copytree(REPO / "agents", tmp_path / "agents")
    shutil.copytree(REPO / "data" / "replay", tmp_path / "data" / "replay")
    return tmp_path
