"""Helpers for the streaming tests: a counting packet builder, an SSE parser and a real server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import uvicorn


class PacketBuilder:
    """An async build_packet that counts calls, can be held open with a gate, and can fail."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.calls: list[tuple[str, int]] = []
        self.running = 0
        self.max_running = 0
        self.gate: asyncio.Event | None = None
        self.fail_with: Exception | None = None

    async def __call__(self, room_id: str, decision_limit: int) -> dict[str, Any]:
        self.calls.append((room_id, decision_limit))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.fail_with is not None:
                raise self.fail_with
            n = len(self.calls)
            return {
                "schema_version": "room.stream_packet.v1",
                "room_id": room_id,
                "build": n,
                "decisions_latest": [{"cycle_number": n - i} for i in range(decision_limit)],
                "decision_latest": {"cycle_number": n},
            }
        finally:
            self.running -= 1


def parse_event(chunk: bytes) -> dict[str, Any]:
    """One SSE chunk as {"comment"} or {"id", "event", "data"} (data decoded from JSON)."""
    text = chunk.decode()
    assert text.endswith("\n\n"), text
    out: dict[str, Any] = {}
    data_lines = []
    for line in text[:-2].split("\n"):
        if line.startswith(":"):
            out["comment"] = line[1:].strip()
        elif line.startswith("id: "):
            out["id"] = int(line[4:])
        elif line.startswith("event: "):
            out["event"] = line[7:]
        elif line.startswith("data: "):
            data_lines.append(line[6:])
    if data_lines:
        out["data"] = orjson.loads("\n".join(data_lines))
    return out


async def next_event(iterator: AsyncIterator[bytes], timeout: float = 2.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        return parse_event(await anext(iterator))


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Parse an HTTP SSE body (httpx `aiter_lines`) into the same dicts as parse_event."""
    block: list[str] = []
    async for line in lines:
        if line == "":
            if block:
                yield parse_event(("\n".join(block) + "\n\n").encode())
                block = []
        else:
            block.append(line)


@contextlib.asynccontextmanager
async def serve(app: Any, *, lifespan: str = "off", before_exit=None, http: Any = "auto") -> AsyncIterator[str]:
    """Run `app` under real uvicorn on a free loopback port; yields its base URL.

    `before_exit` runs before the server is told to stop (e.g. ending open SSE streams).
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan,
                            timeout_graceful_shutdown=2, http=http)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        if before_exit is not None:
            before_exit()
        server.should_exit = True
        await task
