"""Event framing and the small parsers the routes use."""

from __future__ import annotations

import pytest

from runtime_api.streaming import clamp_decision_limit, parse_last_event_id
from runtime_api.streaming.sse import format_event


def test_format_event():
    assert format_event(7, "decision", b'{"a":1}') == b'id: 7\nevent: decision\ndata: {"a":1}\n\n'
    assert format_event(None, "ready", b"{}") == b"event: ready\ndata: {}\n\n"
    assert format_event(1, "x", b"a\nb\r\nc") == b"id: 1\nevent: x\ndata: a\ndata: b\ndata: c\n\n"


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("12", 12), (" 12 ", 12), ("-1", None), ("abc", None), ("1e3", None),
    ("9" * 30, None),
])
def test_parse_last_event_id(header, expected):
    assert parse_last_event_id(header) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, 5), ("", 5), ("abc", 5), ("nan", 5), ("inf", 5), ("3", 3), (3.9, 3), ("0", 1), (-4, 1),
    ("25", 20), (20, 20),
])
def test_clamp_decision_limit(value, expected):
    assert clamp_decision_limit(value) == expected
