"""Audience tests (chat, bets, speech, the built front end) against the real app in process."""

from __future__ import annotations

import contextlib

import pytest

from tests.api.conftest import TOKEN, assert_error, data_of, make_settings, open_api  # noqa: F401

AGENT = "demo_momentum"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@contextlib.asynccontextmanager
async def app_with(root, **env):
    handle, lifespan = await open_api(make_settings(root, **env))
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def on_air(api, *agents: str) -> None:
    """Register and start agents; the background replay is paused so only explicit steps decide."""
    for agent in agents or (AGENT,):
        data_of(await api.control(f"/api/agents/{agent}/register"))
        data_of(await api.control(f"/api/agents/{agent}/start"))
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))


async def bootstrap(api, nickname: str | None = None) -> dict:
    body = {"user_nickname": nickname} if nickname else {}
    return data_of(await api.client.post("/api/chat/session/bootstrap", json=body))


async def step(api) -> dict:
    return data_of(await api.control("/api/agent/runtime/control", {"action": "step"}))["cycle"]
