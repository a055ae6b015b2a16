"""Live viewer streams: the room packet, per-room SSE broadcasters, the market stream and the SSE response."""

from runtime_api.streaming.market_stream import MarketStream, parse_symbols
from runtime_api.streaming.room_hub import RoomHub, RoomSubscription, clamp_decision_limit
from runtime_api.streaming.sse import parse_last_event_id, sse_response
from runtime_api.streaming.viewer import StreamClosed, TooManySubscribers, Viewer

__all__ = [
    "MarketStream",
    "RoomHub",
    "RoomSubscription",
    "StreamClosed",
    "TooManySubscribers",
    "Viewer",
    "clamp_decision_limit",
    "parse_last_event_id",
    "parse_symbols",
    "sse_response",
]
