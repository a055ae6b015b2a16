"""Chat over the room's SSE stream (a real uvicorn server): public records are pushed, DMs never."""

from __future__ import annotations

import pytest

from tests.viewer.helpers import AGENT, live_app, make_settings, next_of, room_stream

pytestmark = pytest.mark.anyio
EVENTS = f"/api/rooms/{AGENT}/events"


async def test_public_messages_reach_viewers_and_dms_never_do(root):
    async with live_app(make_settings(root, CHAT_VIEWER_POSTS_ENABLED="true", ROOM_EVENTS_STREAM_PACKET_INTERVAL_MS="2000")) as live:
        await live.start_agent()
        await live.step()
        session = (await live.client.post("/api/chat/session/bootstrap", json={"user_nickname": "eve"})).json()["data"]
        async with room_stream(live.client, EVENTS) as (_, events):
            await next_of(events, "stream_packet")
            dm = {"user_session_id": session["user_session_id"], "message_type": "private_agent_dm",
                  "visibility": "private", "text": "secret plan"}
            assert (await live.client.post(f"/api/chat/rooms/{AGENT}/messages", json=dm)).status_code == 200
            public = {"user_session_id": session["user_session_id"], "message_type": "public_mention_agent",
                      "text": "@agent hello"}
            posted = (await live.client.post(f"/api/chat/rooms/{AGENT}/messages", json=public)).json()["data"]
            first, second = await next_of(events, "chat_public_append"), await next_of(events, "chat_public_append")
            packet = await next_of(events, "stream_packet", timeout=20)
    assert first["data"]["schema_version"] == "room.chat_public_append.v1" and first["data"]["room_id"] == AGENT
    assert first["data"]["message"] == posted["message"] and second["data"]["message"] == posted["agent_reply"]
    assert "secret plan" not in str(first) + str(second) + str(packet)
    assert session["user_session_id"] not in str(first) + str(packet)
    preview = packet["data"]["public_chat_preview"]["messages"]
    assert [m["agent_message_kind"] if m["sender_type"] == "agent" else "user" for m in preview] == ["narration", "user", "reply"]
