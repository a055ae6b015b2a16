"""Room chat: bootstrap, reads, posting rules and limits, session secrets, storage, narration."""

from __future__ import annotations

import orjson
import pytest

from .conftest import AGENT, app_with, assert_error, bootstrap, data_of, on_air, step

pytestmark = pytest.mark.anyio
POSTING = {"CHAT_VIEWER_POSTS_ENABLED": "true"}


def messages_path(root, room=AGENT):
    return root / "data" / "chat" / "rooms" / f"{room}.jsonl"


async def post(api, session: str | None, text="hello", room=AGENT, message_type="public_plain", **extra):
    body = {"user_session_id": session, "message_type": message_type, "text": text, **extra}
    return await api.client.post(f"/api/chat/rooms/{room}/messages", json=body)


async def test_bootstrap_issues_a_private_credential_and_a_separate_public_id(root):
    async with app_with(root) as api:
        one, two = await bootstrap(api, "  Lucky   Cat  "), await bootstrap(api)
    assert one["user_session_id"].startswith("usr_sess_") and one["user_session_id"] != two["user_session_id"]
    assert one["user_nickname"] == "Lucky Cat" and two["user_nickname"].startswith("User-")
    assert one["credit_points"] == 1000
    assert one["public_user_id"].startswith("usr_") and one["public_user_id"] not in one["user_session_id"]
    assert not (root / "data" / "chat").exists()  # a bootstrap stores nothing


async def test_viewers_are_read_only_by_default(root):
    async with app_with(root) as api:
        await on_air(api)
        session = (await bootstrap(api))["user_session_id"]
        assert_error(await post(api, session), 403, "chat_posting_disabled")
        assert not messages_path(root).exists()


@pytest.mark.parametrize(("case", "status", "code"), [
    ({"room": "%20"}, 400, "invalid_room_id"),
    ({"session": ""}, 400, "invalid_user_session_id"),
    ({"session": "usr_sess_0123456789abcdef"}, 403, "unverified_user_session"),  # Node's format, not ours
    ({"message_type": "shout"}, 400, "invalid_message_type"),
    ({"text": "   "}, 400, "invalid_text"),
    ({"text": "x" * 601}, 400, "text_too_long"),
    ({"text": "🙂" * 301}, 400, "text_too_long"),  # UTF-16 units, as Node counts
    ({"room": "t_999"}, 404, "room_not_found"),
    ({"message_type": "private_agent_dm"}, 400, "invalid_visibility"),
    ({"message_type": "public_plain", "visibility": "private"}, 400, "invalid_visibility"),
    ({"text": "hi @john"}, 400, "invalid_mention_target"),
    ({"text": "mail me a@b.com"}, 400, "invalid_mention_target"),
])
async def test_post_errors(root, case, status, code):
    async with app_with(root, **POSTING) as api:
        await on_air(api)
        session = (await bootstrap(api))["user_session_id"]
        args = {"session": session, "text": "hello", "room": AGENT, "message_type": "public_plain", **case}
        resp = await post(api, args.pop("session"), args.pop("text"), args.pop("room"), args.pop("message_type"), **args)
        assert_error(resp, status, code)
        assert data_of(await api.get(f"/api/chat/rooms/{AGENT}/public"))["messages"] == []  # nothing stored


async def test_limits_per_session_and_room_then_per_address(root):
    async with app_with(root, **POSTING, CHAT_RATE_LIMIT_PER_IP_PER_MIN="25") as api:
        await on_air(api)
        first = (await bootstrap(api))["user_session_id"]
        assert data_of(await post(api, first, "x" * 600))["message"]["text"] == "x" * 600
        for n in range(19):
            data_of(await post(api, first, f"n{n}"))
        assert_error(await post(api, first, "one too many"), 429, "rate_limited")
        assert_error(await post(api, first, "   "), 400, "invalid_text")  # validation still runs first
        # A new session gets its own 20, but the address has 25 in total.
        second = (await bootstrap(api))["user_session_id"]
        for n in range(5):
            data_of(await post(api, second, f"m{n}"))
        assert_error(await post(api, second, "address limit"), 429, "rate_limited")
        public = data_of(await api.get(f"/api/chat/rooms/{AGENT}/public", params={"limit": 200}))["messages"]
    assert len(public) == 25


async def test_text_is_stored_and_served_as_plain_text(root):
    script = "<script>alert('x')</script> & <b>bold</b>\u202e"
    async with app_with(root, **POSTING) as api:
        await on_air(api)
        session = (await bootstrap(api, "<img src=x onerror=1>"))["user_session_id"]
        message = data_of(await post(api, session, script))["message"]
        resp = await api.get(f"/api/chat/rooms/{AGENT}/public")
    plain = "<script>alert('x')</script> & <b>bold</b>"  # the bidi override is dropped, nothing escaped
    assert message["text"] == plain and message["sender_name"] == "<img src=x onerror=1>"
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["data"]["messages"][-1]["text"] == plain
    stored = [orjson.loads(line) for line in messages_path(root).read_bytes().splitlines()]
    assert stored[-1]["text"] == plain and "&lt;" not in messages_path(root).read_text()


async def test_the_public_id_cannot_read_dms_post_or_bet(root):
    async with app_with(root, **POSTING) as api:
        await on_air(api)
        await step(api)
        me = await bootstrap(api, "alice")
        dm = data_of(await post(api, me["user_session_id"], "@agent what now?", message_type="private_agent_dm",
                                visibility="private"))
        assert dm["agent_reply"]["text"].startswith("@alice ") and dm["agent_reply"]["visibility"] == "private"
        public_id = dm["message"]["user_session_id"]
        assert public_id == me["public_user_id"] != me["user_session_id"]

        mine = data_of(await api.get(f"/api/chat/rooms/{AGENT}/private", params={"user_session_id": me["user_session_id"]}))
        assert [m["sender_type"] for m in mine["messages"]] == ["user", "agent"]
        for forged in (public_id, "usr_sess_" + "0" * 48, me["user_session_id"][:-1] + "0"):
            assert_error(await api.get(f"/api/chat/rooms/{AGENT}/private", params={"user_session_id": forged}), 403,
                         "unverified_user_session")
            assert_error(await post(api, forged, "as alice"), 403, "unverified_user_session")
            resp = await api.client.post("/api/bets/place", json={"user_session_id": forged, "trader_id": AGENT, "stake_amount": 5})
            assert_error(resp, 403, "unverified_user_session")
        assert_error(await api.get(f"/api/chat/rooms/{AGENT}/private"), 400, "invalid_user_session_id")
        other = (await bootstrap(api))["user_session_id"]
        theirs = data_of(await api.get(f"/api/chat/rooms/{AGENT}/private", params={"user_session_id": other}))
        assert theirs["messages"] == []
        public = data_of(await api.get(f"/api/chat/rooms/{AGENT}/public"))["messages"]
    assert all(m["visibility"] == "public" for m in public)  # DMs never in the public timeline
    assert me["user_session_id"] not in messages_path(root).read_text()  # the credential is never stored


async def test_mentions_get_a_rule_reply_only_while_the_agent_runs(root):
    async with app_with(root, **POSTING) as api:
        await on_air(api)
        await step(api)
        session = (await bootstrap(api, "Bob Lee"))["user_session_id"]
        handle = "replay_momentum_demo"
        replied = data_of(await post(api, session, f"@{handle} why?", message_type="public_mention_agent"))
        assert replied["agent_reply"]["agent_message_kind"] == "reply"
        assert replied["agent_reply"]["text"].startswith("@Bob_Lee ")
        assert data_of(await post(api, session, "just saying"))["agent_reply"] is None  # plain: LLM only
        data_of(await api.control(f"/api/agents/{AGENT}/stop"))
        assert data_of(await post(api, session, "@agent hello?", message_type="public_mention_agent"))["agent_reply"] is None


async def test_reads_limit_and_before_and_retention(root):
    async with app_with(root, **POSTING, CHAT_RETENTION_MESSAGES="50", CHAT_RATE_LIMIT_PER_MIN="500",
                        CHAT_RATE_LIMIT_PER_IP_PER_MIN="500") as api:
        await on_air(api)
        session = (await bootstrap(api))["user_session_id"]
        for n in range(120):
            data_of(await post(api, session, f"m{n}"))
        last = data_of(await api.get(f"/api/chat/rooms/{AGENT}/public", params={"limit": "abc"}))["messages"]
        assert [m["text"] for m in last] == [f"m{n}" for n in range(100, 120)]  # default 20, oldest first
        everything = data_of(await api.get(f"/api/chat/rooms/{AGENT}/public", params={"limit": 9999}))["messages"]
        assert len(everything) == 50 and everything[-1]["text"] == "m119"
        before = data_of(await api.get(f"/api/chat/rooms/{AGENT}/public",
                                       params={"limit": 3, "before_ts_ms": everything[-1]["created_ts_ms"]}))["messages"]
        assert all(m["created_ts_ms"] < everything[-1]["created_ts_ms"] for m in before) and len(before) <= 3
        stamps = [m["created_ts_ms"] for m in everything]
        assert stamps == sorted(stamps)
    lines = messages_path(root).read_bytes().splitlines()
    assert 50 <= len(lines) <= 100 and orjson.loads(lines[-1])["text"] == "m119"


async def test_narration_follows_decisions_with_the_node_cadence_and_stops_with_the_kill_switch(root):
    async with app_with(root) as api:
        await on_air(api)
        await step(api)
        said = data_of(await api.get(f"/api/chat/rooms/{AGENT}/public"))["messages"]
        assert [m["agent_message_kind"] for m in said] == ["narration"]
        assert said[0]["user_session_id"] == "room_broadcast" and said[0]["text"].endswith("。")
        await step(api)  # within 25 s of the last narration: throttled
        assert len(data_of(await api.get(f"/api/chat/rooms/{AGENT}/public"))["messages"]) == 1
        chat = api.ctx.extra["audience"].chat
        chat._last_narration.clear()  # as if the hold gap had passed

        data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "test"}))
        assert_error(await api.control("/api/agent/runtime/control", {"action": "step"}), 423, "kill_switch_active")
        record = api.ctx.runtime.history[AGENT][0]
        await chat.on_decision(AGENT, {**record, "timestamp": "late"}, {})  # a decision that was in flight
        chat.watchers = lambda room_id: 1
        assert await chat.proactive_once() == []
        assert len(data_of(await api.get(f"/api/chat/rooms/{AGENT}/public"))["messages"]) == 1
        data_of(await api.control("/api/agent/runtime/kill-switch", {"action": "deactivate"}))
        await step(api)
        assert len(data_of(await api.get(f"/api/chat/rooms/{AGENT}/public"))["messages"]) == 2


async def test_proactive_lines_only_while_watched_running_unpaused_and_unkilled(root):
    async with app_with(root, CHAT_DECISION_NARRATION_ENABLED="false") as api:
        await on_air(api)
        await step(api)
        chat = api.ctx.extra["audience"].chat
        assert await chat.proactive_once() == []  # nobody watches
        chat.watchers = lambda room_id: 1
        data_of(await api.control("/api/agent/runtime/control", {"action": "pause"}))
        assert await chat.proactive_once() == []
        data_of(await api.control("/api/agent/runtime/control", {"action": "resume"}))
        data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
        assert await chat.proactive_once() == [AGENT]
        assert await chat.proactive_once() == []  # the room spoke just now: wait for the interval
        said = data_of(await api.get(f"/api/chat/rooms/{AGENT}/public"))["messages"]
        assert [m["agent_message_kind"] for m in said] == ["proactive"]
        data_of(await api.control(f"/api/agents/{AGENT}/stop"))
        chat.store._rooms.clear()  # forget the recent line: only the stopped agent keeps it quiet now
        assert await chat.proactive_once() == []


async def test_chat_llm_is_used_only_within_the_agents_breaker(root):
    # The chat LLM is on but its provider refuses connections: replies fall back to the rule
    # template, and after the breaker opens the provider is not called at all.
    async with app_with(root, **POSTING, CHAT_LLM_ENABLED="true", OPENAI_API_KEY="sk-test",
                        OPENAI_BASE_URL="http://127.0.0.1:9/v1", AGENT_LLM_BREAKER_FAILURES="2") as api:
        await on_air(api)
        session = (await bootstrap(api))["user_session_id"]
        chat = api.ctx.extra["audience"].chat
        for n in range(4):
            reply = data_of(await post(api, session, f"@agent q{n}?", message_type="public_mention_agent"))["agent_reply"]
            assert reply["agent_message_kind"] == "reply"
        assert chat.counters["llm_failures"] == 2 and chat.counters["llm_skipped_breaker"] == 2
        assert api.ctx.runtime.breaker_for(AGENT).state == "open"


async def test_tts_config_shape_and_disabled_speech(root):
    async with app_with(root) as api:
        await on_air(api, AGENT, "t_003")
        config = data_of(await api.get("/api/chat/tts/config"))
        assert config["enabled"] is False and config["providers"]["openai"]["enabled"] is False
        assert set(config) == {"enabled", "provider", "model", "response_format", "speed", "max_chars", "voice_map",
                               "room_profiles", "providers", "default_provider", "tone_modes", "tone_speed_map"}
        assert config["voice_map"]["t_003"] == "nova" and AGENT in config["room_profiles"]
        assert config["providers"]["selfhosted"]["endpoint"] == ""  # no built-in public address
        assert_error(await api.client.post("/api/chat/tts", json={"room_id": AGENT, "text": "hi"}), 503, "tts_disabled")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "-1", "abc", "", "2.9"])
async def test_odd_query_numbers_never_fail_a_read(root, value):
    async with app_with(root) as api:
        await on_air(api)
        session = (await bootstrap(api))["user_session_id"]
        params = {"limit": value, "before_ts_ms": value, "user_session_id": session}
        for path in (f"/api/chat/rooms/{AGENT}/public", f"/api/chat/rooms/{AGENT}/private", "/api/bets/credits", "/api/bets/market"):
            assert (await api.get(path, params=params)).status_code == 200, (path, value)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"text": {"a": 1}}, 400, "invalid_text"),
    ({"text": ["x"]}, 400, "invalid_text"),
    ({"user_session_id": 7}, 403, "unverified_user_session"),
    ({"user_nickname": {"x": 1}, "text": 12}, 200, None),  # a number is its decimal text, as Node
])
async def test_odd_post_bodies_get_clear_errors(root, body, status, code):
    async with app_with(root, **POSTING) as api:
        await on_air(api)
        session = (await bootstrap(api))["user_session_id"]
        full = {"user_session_id": session, "message_type": "public_plain", "text": "hi", **body}
        resp = await api.client.post(f"/api/chat/rooms/{AGENT}/messages", json=full)
        if code:
            assert_error(resp, status, code)
        else:
            assert data_of(resp)["message"]["text"] == "12"


async def test_speech_is_made_once_per_agent_message_by_the_provider(root):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.streaming.helpers import serve

    calls = []

    async def speech(request):
        calls.append(await request.json())
        return Response(b"ID3-fake-mp3-bytes", media_type="audio/mpeg")

    provider = Starlette(routes=[Route("/v1/audio/speech", speech, methods=["POST"])])
    async with serve(provider) as base:
        async with app_with(root, CHAT_TTS_ENABLED="true", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=f"{base}/v1") as api:
            await on_air(api)
            assert data_of(await api.get("/api/chat/tts/config"))["enabled"] is True
            await step(api)
            narration = data_of(await api.get(f"/api/chat/rooms/{AGENT}/public"))["messages"][-1]
            for _ in range(3):
                resp = await api.client.post("/api/chat/tts", json={"room_id": AGENT, "text": narration["text"],
                                                                    "message_id": narration["id"]})
                assert resp.status_code == 200 and resp.content == b"ID3-fake-mp3-bytes"
                assert resp.headers["content-type"] == "audio/mpeg" and resp.headers["x-tts-voice"] == "nova"
            free = await api.client.post("/api/chat/tts", json={"room_id": AGENT, "text": "say anything I want"})
            assert_error(free, 400, "message_id_required")
            assert_error(await api.client.post("/api/chat/tts", json={"room_id": AGENT}), 400, "text_required")
            assert_error(await api.client.post("/api/chat/tts", json={"room_id": "t_999", "text": "x"}), 404, "room_not_found")
    assert len(calls) == 1 and calls[0]["input"] == narration["text"] and calls[0]["model"] == "tts-1-hd"


async def test_runtime_status_shows_what_the_chat_does(root):
    async with app_with(root) as api:
        await on_air(api)
        await step(api)
        status = data_of(await api.get("/api/agent/runtime/status"))["chat_streaming"]
    assert status["viewer_posts_enabled"] is False and status["narration_enabled"] is True
    assert status["counters"]["narrations"] == 1 and status["store"]["rooms_loaded"] >= 1
    assert status["bets"] == {"settlements": 0, "ledger_writes": 0, "replay_round": 0}


async def test_read_errors(root):
    async with app_with(root) as api:
        await on_air(api)
        session = (await bootstrap(api))["user_session_id"]
        assert_error(await api.get("/api/chat/rooms/t_999/public"), 404, "room_not_found")
        assert_error(await api.get("/api/chat/rooms/BAD%20ID/public"), 400, "invalid_room_id")
        assert_error(await api.get("/api/chat/rooms/t_999/private", params={"user_session_id": session}), 404, "room_not_found")
        assert_error(await api.get("/api/bets/market", params={"trader_id": "t_999"}), 404, "trader_not_available_for_bet")
        assert data_of(await api.get("/api/bets/market", params={"market": "us"}))["market"] == "US"


async def test_bets_can_be_switched_off(root):
    async with app_with(root, BETS_ENABLED="false") as api:
        await on_air(api)
        session = (await bootstrap(api))["user_session_id"]
        for resp in (await api.get("/api/bets/market"), await api.get("/api/bets/credits"),
                     await api.client.post("/api/bets/place", json={"user_session_id": session, "trader_id": AGENT})):
            assert_error(resp, 404, "bets_disabled")
        assert data_of(await api.get(f"/api/rooms/{AGENT}/stream-packet"))["bets"] == {"enabled": False}


async def test_speech_refuses_a_non_numeric_speed(root):
    async with app_with(root, CHAT_TTS_ENABLED="true", OPENAI_API_KEY="sk-test") as api:
        await on_air(api)
        resp = await api.client.post("/api/chat/tts", json={"room_id": AGENT, "text": "x", "speed": "fast"})
        assert_error(resp, 400, "invalid_speed")
