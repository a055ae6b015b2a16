"""The viewer bus: the runtime publishes what viewers see to Redis streams; edges serve it.

Layout (all keys under `onlytrade:bus:`; see `keys.py`):
* `events` — one stream for every room event (decisions, packets, chat, errors, gaps), each entry
  `room`, `event`, `data` (JSON). Its ids are the SSE ids every edge sends, so a viewer resumes on
  any edge. Bounded by `XADD MAXLEN ~ VIEWER_BUS_STREAM_MAXLEN`.
* `packets` — hash room → the newest `stream_packet` (id and JSON), for an edge that starts late.
* `reads` — hash read key → ETag, Cache-Control and body of the public reads edges serve, and the
  `reads:changed` stream announcing each change.
The runtime stays the only writer; edges only read.
"""
