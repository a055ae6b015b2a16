"""An SSE client in a thread: events (id kept as the string the server sent) into a queue."""

from __future__ import annotations

import queue
import threading
import time

import httpx
import orjson


class SseReader:
    def __init__(self, url: str, headers: dict[str, str] | None = None):
        self.url, self.headers = url, headers or {}
        self.events: queue.Queue[dict] = queue.Queue()
        self.last_id: str | None = None
        self.status: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(5, read=None)) as c, c.stream("GET", self.url, headers=self.headers) as r:
                self.status = r.status_code
                block: dict = {}
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line == "":
                        if block:
                            if "id" in block:
                                self.last_id = block["id"]
                            self.events.put(block)
                        block = {}
                    elif line.startswith(":"):
                        block["comment"] = line[1:].strip()
                    elif line.startswith("id: "):
                        block["id"] = line[4:]
                    elif line.startswith("event: "):
                        block["event"] = line[7:]
                    elif line.startswith("data: "):
                        block["data"] = orjson.loads(line[6:])
        except httpx.HTTPError as exc:
            self.events.put({"event": "_closed", "error": repr(exc)})
        self.events.put({"event": "_closed"})

    def next(self, event: str, timeout: float = 10.0, where=lambda e: True) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event!r} event within {timeout}s from {self.url}")
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if e.get("event") == event and where(e):
                return e
            if e.get("event") == "_closed" and event != "_closed":
                raise AssertionError(f"stream closed waiting for {event!r}: {e}")

    def drain(self) -> list[dict]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stop.set()
