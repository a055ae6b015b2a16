"""Room chat and TTS routes (`/api/chat/*`), with the Node shapes, codes and limits."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response

from ..streaming import packet
from ..audience import audience_of
from ..chat import tts
from ..access.control_route import client_ip, read_route
from ..errors import ApiError
from ..web.http import json_body
from ..manifests import AGENT_ID_RE
from ..numbers import finite
from ..web.responses import ok
from ..access.viewer_actions import viewer_route

DEFAULT_LIMIT = 20
MAX_LIMIT = 200


def _limit(request: Request) -> int:
    value = finite(request.query_params.get("limit"))
    return DEFAULT_LIMIT if value is None else max(1, min(MAX_LIMIT, math.floor(value)))


def _before(request: Request) -> int | None:
    value = finite(request.query_params.get("before_ts_ms"))
    return None if value is None else int(value)


def _room_id(request: Request) -> str:
    room_id = str(request.path_params.get("room_id") or "").strip()
    if not room_id:
        raise ApiError(400, "invalid_room_id", "a room id is an agent id such as t_001")
    return room_id


async def post_chat_session_bootstrap(request: Request) -> Response:
    """A new viewer session: keep `user_session_id` private (it is the credential); messages show another id."""
    body = await json_body(request)
    aud = audience_of(request.app.state.ctx)
    issued = aud.sessions.issue(body.get("user_nickname"))
    points = aud.bets.balance(issued["public_id"]) if aud.bets else 0
    return ok({"user_session_id": issued["user_session_id"], "user_nickname": issued["user_nickname"],
               "credit_points": points, "public_user_id": issued["public_id"]})


async def get_room_public_chat(request: Request) -> Response:
    """The room's last `limit` (1..200, default 20) public messages before `before_ts_ms`, oldest first."""
    ctx = request.app.state.ctx
    room_id = packet.room_record(ctx, _room_id(request))["agent_id"]
    chat = audience_of(ctx).chat
    await chat.ensure_loaded(room_id)
    return ok({"room_id": room_id, "visibility": "public",
               "messages": chat.store.public(room_id, _limit(request), _before(request))})


async def get_room_private_chat(request: Request) -> Response:
    """A viewer's DMs with the room's agent; needs the session credential from bootstrap."""
    ctx = request.app.state.ctx
    room_id = _room_id(request)
    chat = audience_of(ctx).chat
    credential = request.query_params.get("user_session_id")
    public_id = chat.verify(credential)
    room_id = packet.room_record(ctx, room_id)["agent_id"]
    await chat.ensure_loaded(room_id)
    return ok({"room_id": room_id, "user_session_id": str(credential).strip(), "visibility": "private",
               "messages": chat.store.private(room_id, public_id, _limit(request), _before(request))})


async def post_room_message(request: Request) -> Response:
    """A viewer message (403 chat_posting_disabled unless CHAT_VIEWER_POSTS_ENABLED), maybe an agent reply."""
    ctx = request.app.state.ctx
    body = await json_body(request)
    room_id = str(request.path_params.get("room_id") or "").strip()
    rec = None
    if AGENT_ID_RE.match(room_id):
        found = ctx.svc.registry.get(room_id)
        rec = found if found and found.get("available") is not False else None
    chat = audience_of(ctx).chat
    if rec is not None:
        await chat.ensure_loaded(room_id)
    return ok(await chat.post(rec, room_id, body, client_ip(request)))


async def get_tts_config(request: Request) -> Response:
    """The TTS config the client reads (`enabled:false` unless CHAT_TTS_ENABLED and a key are set)."""
    ctx = request.app.state.ctx
    return ok(tts.config(ctx.settings, ctx.svc.registry.lobby_ids()))


async def post_tts(request: Request) -> Response:
    """Speech for one agent message of a room (`message_id`), synthesised once and cached."""
    ctx = request.app.state.ctx
    if not tts.enabled(ctx.settings):
        raise ApiError(503, "tts_disabled", "text-to-speech is not configured on this server")
    body = await json_body(request)
    room_id = str(body.get("room_id") or "").strip()
    if not room_id:
        raise ApiError(400, "room_id_required")
    if not str(body.get("text") or "").strip() and not body.get("message_id"):
        raise ApiError(400, "text_required")
    room_id = packet.room_record(ctx, room_id)["agent_id"]
    speed = body.get("speed")
    if speed is not None and not isinstance(speed, (int, float)):
        raise ApiError(400, "invalid_speed")
    aud = audience_of(ctx)
    await aud.chat.ensure_loaded(room_id)
    message = aud.chat.store.find(room_id, str(body.get("message_id") or ""))
    if message is None or message.get("sender_type") != "agent" or message.get("visibility") != "public":
        raise ApiError(400, "message_id_required", "speech is only made for a public agent message of this room (message_id)")
    audio, headers = await aud.speech.audio(room_id, message)
    return Response(audio, headers=headers)


routes = [
    viewer_route("/api/chat/session/bootstrap", post_chat_session_bootstrap,
                 protections="stateless HMAC credential; stores nothing per call"),
    read_route("/api/chat/rooms/{room_id}/public", get_room_public_chat),
    read_route("/api/chat/rooms/{room_id}/private", get_room_private_chat),
    viewer_route("/api/chat/rooms/{room_id}/messages", post_room_message,
                 protections="CHAT_VIEWER_POSTS_ENABLED (off by default); session credential; per-session and per-address rate limits"),
    read_route("/api/chat/tts/config", get_tts_config),
    viewer_route("/api/chat/tts", post_tts,
                 protections="CHAT_TTS_ENABLED; only existing agent messages are spoken, cached per message"),
]
