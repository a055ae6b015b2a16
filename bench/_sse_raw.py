"""Light SSE viewers for thousands of connections from one process: raw asyncio sockets, no parsing
beyond finding the events a benchmark waits for; and a /health prober run as its own process."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_TS = re.compile(rb'"ts_ms":(\d+)')


@dataclass
class RawViewer:
    url: str
    opened_at: float | None = None
    error: str | None = None
    bytes: int = 0
    # one (arrival wall ms, the event's ts_ms) per `decision` event, in order
    decisions: list = field(default_factory=list)

    @property
    def decision_at(self):
        return self.decisions[-1][0] if self.decisions else None

    async def run(self, stop: asyncio.Event) -> None:
        u = urlsplit(self.url)
        writer = None
        try:
            reader, writer = await asyncio.open_connection(u.hostname, u.port)
            path = u.path + (f"?{u.query}" if u.query else "")
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nAccept: text/event-stream\r\n\r\n".encode())
            buf = b""
            while not stop.is_set():
                chunk = await reader.read(65536)
                if not chunk:
                    self.error = self.error or "closed"
                    return
                self.bytes += len(chunk)
                buf += chunk
                if self.opened_at is None:
                    if not buf.startswith(b"HTTP/1.1 200"):
                        if b"\r\n" in buf:
                            self.error = buf.split(b"\r\n", 1)[0].decode(errors="replace")
                            return
                        continue
                    if b"event: stream_packet" in buf:
                        self.opened_at = time.perf_counter()
                while True:
                    p = buf.find(b"event: decision")
                    m = _TS.search(buf, p) if p >= 0 else None
                    if m is None:
                        break
                    self.decisions.append((time.time() * 1000, int(m.group(1))))
                    buf = buf[m.end():]
                if len(buf) > 65536:  # packets are not parsed: keep only a tail that may hold a split header
                    buf = buf[-8192:]
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.error = type(exc).__name__
        finally:
            if writer is not None:
                writer.close()


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


PROBE = r"""
import http.client, json, sys, time
host, port, period, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
conn = http.client.HTTPConnection(host, port, timeout=10)
out, end = [], time.time() + seconds
while time.time() < end:
    t0 = time.time()
    try:
        conn.request("GET", "/health"); r = conn.getresponse(); r.read(); ok = r.status == 200
    except Exception:
        conn = http.client.HTTPConnection(host, port, timeout=10); ok = False
    out.append((t0, (time.time() - t0) * 1000, ok))
    time.sleep(max(0.0, period - (time.time() - t0)))
print(json.dumps(out))
"""


def start_probe(base: str, seconds: float, period_s: float = 0.01) -> subprocess.Popen:
    """`/health` every `period_s` from its own process (so the viewers' own work does not count)."""
    u = urlsplit(base)
    return subprocess.Popen([sys.executable, "-c", PROBE, u.hostname, str(u.port), str(period_s), str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def probe_result(proc: subprocess.Popen) -> list[tuple[float, float, bool]]:
    out, _ = proc.communicate(timeout=600)
    return [tuple(row) for row in json.loads(out or "[]")]
