"""Room chat store: durable append rate, and a public read from memory against Node's full-file read.

    .venv/bin/python bench/chat_store.py [--messages 5000] [--retention 2000] [--reads 2000]

Writes under a temporary folder only; prints figures and exits 0. Node read the whole
`public.jsonl` on every GET (and twice per packet); the store here serves the last `limit`
records from memory and keeps the file bounded by the retention.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from runtime_api.chat.store import ChatStore

ROOM = "t_001"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--retention", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = ChatStore(Path(tmp), retention=args.retention)
        record = {"room_id": ROOM, "user_session_id": "room_broadcast", "sender_type": "agent", "sender_name": "HS300 Momentum",
                  "visibility": "public", "message_type": "public_plain", "agent_message_kind": "narration",
                  "text": "先看看：信号快照：5m+0.04%，20m+0.39%，RSI55，趋势偏弱，这一轮先等等。"}
        started = time.perf_counter()
        for n in range(args.messages):
            store.append(ROOM, {**record, "id": f"msg_{n}"})
        append_s = time.perf_counter() - started
        path = store.path_for(ROOM)
        size = path.stat().st_size

        memory_ms = []
        for _ in range(args.reads):
            t = time.perf_counter()
            store.public(ROOM, 50)
            memory_ms.append((time.perf_counter() - t) * 1000)
        full_ms = []
        for _ in range(max(1, args.reads // 10)):
            t = time.perf_counter()
            rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
            rows[-50:]
            full_ms.append((time.perf_counter() - t) * 1000)

        cold = ChatStore(Path(tmp), retention=args.retention)
        t = time.perf_counter()
        cold.load(ROOM)
        load_ms = (time.perf_counter() - t) * 1000

    print(f"appends: {args.messages} in {append_s:.2f} s = {args.messages / append_s:.0f}/s (fsync per append); "
          f"compactions {store.compactions}")
    print(f"file after {args.messages} appends with retention {args.retention}: "
          f"{size / 1024:.0f} KiB, {len(rows)} lines")
    print(f"public read limit=50 from memory: p50 {statistics.median(memory_ms):.3f} ms, p99 {percentile(memory_ms, 99):.3f} ms")
    print(f"same read by parsing the whole file (Node's way): p50 {statistics.median(full_ms):.2f} ms, "
          f"p99 {percentile(full_ms, 99):.2f} ms")
    print(f"first load of the room (tail of the file): {load_ms:.1f} ms")


if __name__ == "__main__":
    main()
