"""Fixtures for the ops CLI tests: one real runtime per test module, shared by its tests."""

from __future__ import annotations

import pytest
from ops_helpers import QUIET_REPLAY, make_root, running


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A replay-mode runtime on a temporary root; the replay only moves when a test steps it."""
    root = make_root(tmp_path_factory.mktemp("ops-root"))
    with running(root, QUIET_REPLAY) as proc:
        yield proc
