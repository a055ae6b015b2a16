"""SIGTERM with viewers connected: every stream ends with `event: bye` and the process exits 0 at once."""

from __future__ import annotations

import contextlib
import signal
import time

import httpx

from tests.e2e.server import RuntimeProcess

AGENT = "demo_momentum"


def events_of(response: httpx.Response):
    """Parsed SSE events as (event, data-text) pairs; comments come as (None, comment)."""
    event = data = None
    for line in response.iter_lines():
        if line.startswith(":"):
            yield None, line[1:].strip()
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and event is not None:
            yield event, data
            event = data = None


def test_sigterm_ends_open_streams_with_bye_and_exits_zero_promptly(root):
    server = RuntimeProcess(root).start()
    try:
        server.control(f"/api/agents/{AGENT}/register")
        with contextlib.ExitStack() as stack:
            client = stack.enter_context(httpx.Client(base_url=server.base, timeout=httpx.Timeout(10.0, read=30.0)))
            streams = []
            for path in (f"/api/rooms/{AGENT}/events", f"/api/rooms/{AGENT}/events",
                         "/api/market/stream?symbols=600519.SH"):
                response = stack.enter_context(client.stream("GET", path))
                assert response.status_code == 200
                events = events_of(response)
                first_event = "ready" if "market" in path else "stream_packet"
                assert next(e for e, _ in events if e is not None) == first_event
                streams.append(events)

            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            endings = [[e for e in events if e[0] is not None] for events in streams]
            code = server.proc.wait(15)
            elapsed = time.monotonic() - started
    finally:
        server.stop(signal.SIGKILL)
    assert code == 0
    assert elapsed < 5.0, f"shutdown took {elapsed:.1f}s: the drain waited on the viewers"
    for ending in endings:
        assert ending[-1] == ("bye", '{"reason":"server_shutdown","reconnect":true}'), ending
