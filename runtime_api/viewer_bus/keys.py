"""Key names, stream ids and the encodings shared by the publisher and the edges."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

PREFIX = "onlytrade:bus:"
EVENTS = PREFIX + "events"
PACKETS = PREFIX + "packets"
READS = PREFIX + "reads"
READS_CHANGED = PREFIX + "reads:changed"
ALL_ROOMS = "*"  # the `room` of an entry meant for every room (a gap)


def parse_id(value: str | bytes | None) -> tuple[int, int] | None:
    """A Redis stream id `ms-seq` as a comparable tuple; None when it is not one."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    ms, sep, seq = value.strip().partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit() or len(ms) > 15 or len(seq) > 15:
        return None
    return int(ms), int(seq)


def read_key(path: str, query: str | dict) -> str:
    """The identity of a public read: path plus its query, sorted (so `?a&b` = `?b&a`)."""
    items = sorted(parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else query.items())
    return path + ("?" + urlencode(items) if items else "")


def encode_read(etag: str, cache_control: str, body: bytes) -> bytes:
    return etag.encode() + b"\n" + cache_control.encode() + b"\n" + body


def decode_read(raw: bytes) -> tuple[str, str, bytes]:
    etag, cache_control, body = raw.split(b"\n", 2)
    return etag.decode(), cache_control.decode(), body
