"""Fixtures for the decision-cycle tests."""

from __future__ import annotations

import pytest

from runtime_api.settings import Settings

from .fake_openai import FakeOpenAI


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings() -> Settings:
    """Defaults, independent of the environment and of any .env file."""
    return Settings.from_env({}, env_files=False)


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake
