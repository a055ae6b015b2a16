"""SSE requests enter through streaming.admission: held at the door (the server's HTTP protocol),
then straight to the endpoint, with the same answers, headers and request metrics as any other route."""

from __future__ import annotations

import asyncio

import pytest

import httpx
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from runtime_api.streaming.admission import Door, paced_protocol, stream_head, stream_tails
from tests.conftest import middleware_of
from tests.streaming.helpers import serve
from tests.viewer.helpers import AGENT, live_app, make_settings, room_stream

pytestmark = pytest.mark.anyio


async def test_the_door_lets_per_turn_callbacks_through_each_turn_of_the_loop():
    door = Door(per_turn=8)
    ran: list[int] = []
    for n in range(50):
        door.enter(lambda n=n: ran.append(n))
    assert door.waiting == 50 and ran == []  # nothing runs inside enter()
    per_turn = []
    while door.waiting:
        before = len(ran)
        await asyncio.sleep(0)
        per_turn.append(len(ran) - before)
    assert ran == list(range(50)) and door.admitted == 50  # in arrival order
    assert max(per_turn) <= 8 and len(per_turn) >= 50 // 8
    assert door.status() == {"per_turn": 8, "admitted": 50, "waiting": 0, "max_waiting": 50, "turns": door.turns}


async def test_a_failing_callback_does_not_stop_the_door():
    door = Door(per_turn=2)
    ran: list[int] = []
    loop = asyncio.get_running_loop()
    errors: list = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context["exception"]))
    try:
        door.enter(lambda: 1 / 0)
        for n in range(5):
            door.enter(lambda n=n: ran.append(n))
        for _ in range(10):
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert ran == [0, 1, 2, 3, 4] and isinstance(errors[0], ZeroDivisionError)


@pytest.mark.parametrize("head, is_stream", [
    (b"GET /api/rooms/t_001/events HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"GET /onlytrade/api/rooms/t_001/events?decision_limit=5 HTTP/1.1\r\n", True),
    (b"GET /api/market/stream?symbols=600519.SH HTTP/1.1\r\n", True),
    (b"GET /api/rooms/t_001/events", True),  # the head split over two reads
    (b"GET /health HTTP/1.1\r\n", False),
    (b"GET /api/rooms/t_001/stream-packet HTTP/1.1\r\n", False),
    (b"POST /api/rooms/t_001/events HTTP/1.1\r\n", False),
    (b"GE", False),
])
def test_stream_heads_are_told_from_the_first_bytes(head, is_stream):
    assert stream_head(head, frozenset({b"events", b"stream"})) is is_stream


async def test_paced_server_holds_stream_openings_at_the_door_and_serves_probes_at_once(root):
    from runtime_api.app import create_app

    app = create_app(make_settings(root, ONLYTRADE_SEED_AGENTS="all"))
    door = Door(per_turn=4)
    protocol = paced_protocol(AutoHTTPProtocol, door, stream_tails(app.routes))
    async with serve(app, lifespan="on", before_exit=app.state.ctx.extra["viewer_streams"].end_streams,
                     http=protocol) as base, httpx.AsyncClient(base_url=base, timeout=20) as client:
        port = int(base.rsplit(":", 1)[1])
        opened = await asyncio.gather(*(_open_stream(port, f"/api/rooms/{AGENT}/events") for _ in range(40)))
        assert all(head.startswith(b"HTTP/1.1 200") for head, _ in opened), opened[0][0]
        assert door.admitted == 40 and door.max_waiting > 4 and door.turns >= 10
        assert (await client.get("/health")).status_code == 200  # not a stream: not at the door
        gone = await _open_stream(port, "/api/rooms/t_999/events")
        assert gone[0].startswith(b"HTTP/1.1 404") and door.admitted == 41
        for _, writer in (*opened, gone):
            writer.close()
            await writer.wait_closed()


async def _open_stream(port: int, path: str):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return head, writer


def _lane(app):
    return middleware_of(app, "StreamLane")


async def test_streams_take_the_lane_with_request_ids_metrics_and_the_prefix(root):
    async with live_app(make_settings(root)) as live:
        await live.start_agent()
        for path in (f"/api/rooms/{AGENT}/events", f"/onlytrade/api/rooms/{AGENT}/events"):
            async with room_stream(live.client, path, headers={"x-request-id": "viewer-42"}) as (response, events):
                assert response.status_code == 200
                assert response.headers["x-request-id"] == "viewer-42"
                assert response.headers["cache-control"] == "no-cache, no-transform"
                assert await anext(events) == {"comment": "connected"}
                assert (await anext(events))["event"] == "stream_packet"
        async with live.client.stream("GET", "/api/market/stream?symbols=600519.SH") as market:
            assert market.status_code == 200
        assert sorted(r.path for r in _lane(live.app).routes) == [
            "/api/market/stream", "/api/rooms/{room_id}/events", "/health", "/health/ready"]
        metrics = (await live.client.get("/metrics")).text
        for route in ("/api/rooms/{room_id}/events", "/onlytrade/api/rooms/{room_id}/events", "/api/market/stream"):
            assert f'route="{route}"' in metrics, route


async def test_probes_take_the_lane_fresh_and_never_cacheable(root):
    async with live_app(make_settings(root)) as live:
        for path in ("/health", "/onlytrade/health", "/health/ready"):
            first = await live.client.get(path, headers={"x-request-id": "probe-7"})
            assert first.status_code == 200, (path, first.text)
            assert first.headers["cache-control"] == "no-store"
            assert "etag" not in first.headers
            assert first.headers["x-request-id"] == "probe-7"
            if path == "/health":
                await live.start_agent()
            again = (await live.client.get(path)).json()
            assert again["running"] is True  # a probe says what holds now, never an earlier answer
        head = await live.client.head("/health")  # not a GET: the app's router, as before
        assert (head.status_code, head.headers["cache-control"]) == (200, "no-store")
        metrics = (await live.client.get("/metrics")).text
        for route in ("/health", "/onlytrade/health", "/health/ready"):
            assert f'route="{route}"' in metrics, route


async def test_stream_errors_are_the_apps_json_errors_and_never_cacheable(root):
    async with live_app(make_settings(root)) as live:
        for path, status, code in ((f"/api/rooms/t_999/events", 404, "room_not_found"),
                                   ("/api/rooms/bad%20id/events", 400, "invalid_room_id"),
                                   ("/onlytrade/api/rooms/t_999/events", 404, "room_not_found"),
                                   ("/api/market/stream?symbols=" + ",".join(f"60{n:04d}.SH" for n in range(30)), 400,
                                    "too_many_symbols")):
            response = await live.client.get(path)
            assert response.status_code == status, (path, response.text)
            assert response.json() == {"success": False, "error": code, **({"message": response.json()["message"]}
                                                                           if "message" in response.json() else {})}
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-request-id"]
        # Not a stream: the router answers as before (a POST to a stream path is a 405).
        assert (await live.client.post(f"/api/rooms/{AGENT}/events")).status_code == 405
