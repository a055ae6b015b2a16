"""The ceiling: bare Starlette + orjson on uvicorn serving a ~2 KB JSON document.

    python bench/baseline_app.py --port 18080          # GET / (any path) -> 2 KB JSON
    python bench/baseline_app.py --body-bytes 69000    # the same rows repeated to ~69 KB

Same uvicorn settings as `python -m runtime_api` (runtime_api/server.py): one process, loop and
HTTP parser "auto" (uvloop and httptools when installed), access log off, lifespan on.
It also runs the same 10 ms sleep-lag probe as runtime_api/observability/loop_monitor.py (a copy, so the
baseline imports nothing from the runtime) and serves its figures at GET /_loop, so the event-loop
lag that load alone causes can be compared with the runtime's. `--no-loop-monitor` turns it off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _payload() -> dict:
    rows = [
        {
            "trader_id": f"t_{i:03d}",
            "trader_name": f"Baseline trader {i}",
            "ai_model": "rule-heuristic",
            "exchange": "sim",
            "total_equity": 100000 + i * 137.25,
            "total_pnl": i * 137.25,
            "total_pnl_pct": round(i * 0.137, 2),
            "position_count": i % 4,
            "margin_used_pct": 0,
            "is_running": True,
        }
        for i in range(9)
    ]
    return {"success": True, "data": {"count": len(rows), "traders": rows}}


PAYLOAD = _payload()
assert 1900 <= len(orjson.dumps(PAYLOAD)) <= 2200, len(orjson.dumps(PAYLOAD))


class LoopProbe:
    def __init__(self, window: int = 6000):
        self.lags: list[float] = []
        self.window = window
        self.max_lag_ms = 0.0
        self.stalls_over_20ms = 0

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lag = max(0.0, (time.perf_counter() - start - 0.01) * 1000)
            self.lags.append(lag)
            if len(self.lags) > self.window:
                del self.lags[: len(self.lags) - self.window]
            self.max_lag_ms = max(self.max_lag_ms, lag)
            if lag > 20:
                self.stalls_over_20ms += 1

    def status(self) -> dict:
        lags = sorted(self.lags)
        p99 = lags[int(len(lags) * 0.99) - 1] if lags else 0.0
        return {"samples": len(lags), "max_lag_ms": round(self.max_lag_ms, 2), "p99_lag_ms": round(p99, 2),
                "stalls_over_20ms": self.stalls_over_20ms}


def padded_payload(size: int) -> dict:
    """A document of about `size` bytes (the 2 KB rows repeated): the ceiling for a larger read."""
    rows = PAYLOAD["data"]["traders"]
    out = [rows[i % len(rows)] for i in range(max(1, round(size / len(orjson.dumps(PAYLOAD)) * len(rows))))]
    return {"success": True, "data": {"count": len(out), "traders": out}}


def build_app(loop_monitor: bool = True, body_bytes: int = 0) -> Starlette:
    probe = LoopProbe()
    payload = padded_payload(body_bytes) if body_bytes else PAYLOAD

    async def document(request: Request) -> Response:
        return Response(orjson.dumps(payload), media_type="application/json")

    async def loop(request: Request) -> Response:
        return Response(orjson.dumps({"success": True, "data": {"event_loop": probe.status()}}), media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(probe.run()) if loop_monitor else None
        try:
            yield
        finally:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Starlette(routes=[Route("/_loop", loop), Route("/{path:path}", document)], lifespan=lifespan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--no-loop-monitor", action="store_true")
    ap.add_argument("--body-bytes", type=int, default=0, help="serve a document of about this size instead of 2 KB")
    args = ap.parse_args()
    uvicorn.run(build_app(not args.no_loop_monitor, max(0, min(10_000_000, args.body_bytes))), host=args.host, port=args.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=15, lifespan="on")


if __name__ == "__main__":
    main()
