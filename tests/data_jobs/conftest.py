"""Fixtures for the data jobs: a temporary root with t_001 registered, recorded AKShare responses."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from dj_helpers import FIXTURES, REPO

from runtime_api.settings import Settings
from data_jobs.vendor import RecordedVendor


@pytest.fixture
def live_root(root: Path) -> Path:
    """The test root with t_001 (a CN agent with a 10-stock pool) registered."""
    registry = root / "data" / "agents" / "registry.json"
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_bytes(orjson.dumps({"schema_version": "agent.registry.v1", "agents": {"t_001": {"status": "running"}}}))
    return root


@pytest.fixture
def settings(live_root: Path) -> Settings:
    return Settings.from_env({"ONLYTRADE_ROOT": str(live_root)}, env_files=False)


@pytest.fixture
def vendor() -> RecordedVendor:
    return RecordedVendor(FIXTURES)


@pytest.fixture
def job_env(live_root: Path) -> dict[str, str]:
    """A minimal, hermetic environment for running a job as a real subprocess."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(live_root),
        "PYTHONPATH": str(REPO),
        "PYTHONUTF8": "1",
        "ONLYTRADE_ROOT": str(live_root),
        "ONLYTRADE_DATA_VENDOR": f"recorded:{FIXTURES}",
    }
