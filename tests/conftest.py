"""Shared fixtures: every test runs against a temporary ONLYTRADE_ROOT."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def middleware_of(app, cls_name: str):
    """The instance of middleware `cls_name` in the app's stack (built by the app's first request)."""
    layer = app.middleware_stack
    while type(layer).__name__ != cls_name:
        layer = layer.app
    return layer


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A temporary runtime root holding the shipped agents and replay data (copied, never shared)."""
    shutil.copytree(REPO / "agents", tmp_path / "agents")
    shutil.copytree(REPO / "data" / "replay", tmp_path / "data" / "replay")
    return tmp_path
