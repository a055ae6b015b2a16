"""Helpers for the viewer tests: the real app under real uvicorn (lifespan on), and a control client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runtime_api.app import create_app
from runtime_api.settings import Settings
from tests.streaming.helpers import serve, sse_events

TOKEN = "viewer-test-token-0123456789abcdef"
AGENT = "demo_momentum"


def make_settings(root: Path, **env: str) -> Settings:
    base = {
        "ONLYTRADE_ROOT": str(root),
        "CONTROL_API_TOKEN": TOKEN,
        "AGENT_LLM_ENABLED": "false",
        "REPLAY_SPEED": "0.1",  # the background replay barely moves: tests drive cycles explicitly
        "AGENT_FLAT_ENTRY_ENABLED": "true",
        "AGENT_FLAT_ENTRY_MIN_CYCLES": "1",
    }
    return Settings.from_env({**base, **env}, env_files=False)


@dataclass
class Live:
    """The real app served on a loopback port."""

    app: Any
    base: str
    client: httpx.AsyncClient

    @property
    def ctx(self):
        return self.app.state.ctx

    @property
    def hub(self):
        return self.ctx.extra["viewer_streams"].hub

    async def control(self, path: str, body: dict | None = None) -> dict:
        resp = await self.client.post(path, json=body or {}, headers={"x-control-token": TOKEN})
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    async def start_agent(self, agent_id: str = AGENT) -> None:
        """Register and start an agent; replay paused so only explicit steps decide."""
        await self.control(f"/api/agents/{agent_id}/register")
        await self.control(f"/api/agents/{agent_id}/start")
        await self.control("/api/replay/runtime/control", {"action": "pause"})

    async def step(self) -> dict:
        return await self.control("/api/agent/runtime/control", {"action": "step"})


def serve_app(app: Any):
    """The app under uvicorn with its lifespan; open SSE streams are ended before it stops."""
    return serve(app, lifespan="on", before_exit=app.state.ctx.extra["viewer_streams"].end_streams)


@contextlib.asynccontextmanager
async def live_app(settings: Settings) -> AsyncIterator[Live]:
    app = create_app(settings)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as client:
        yield Live(app, base, client)


@contextlib.asynccontextmanager
async def room_stream(client: httpx.AsyncClient, path: str, headers: dict | None = None):
    """An open SSE response and its parsed events (comments included)."""
    async with client.stream("GET", path, headers=headers or {}) as response:
        yield response, sse_events(response.aiter_lines())


async def next_of(events, name: str, timeout: float = 10.0) -> dict:
    """The next event called `name`, skipping others (comments, other events)."""
    async with asyncio.timeout(timeout):
        async for event in events:
            if event.get("event") == name:
                return event
    raise AssertionError(f"stream ended before a {name!r} event")


async def wait_for(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def asgi_app(settings: Settings) -> AsyncIterator[Live]:
    """The real app in process (lifespan run by hand; httpx's ASGI transport buffers whole bodies)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=20) as client:
            yield Live(app, "http://testserver", client)
