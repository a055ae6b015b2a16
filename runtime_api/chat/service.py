"""The chat service of one app: viewer posts, agent replies, decision narration, proactive lines.

The agent speaks on its own only while it is really on air: registered and running, the runtime
neither paused nor killed, and (for unprompted lines) somebody watching the room (Node's proactive
timer never stopped, W-C7/W-C10). Every public record goes out as one `chat_public_append` SSE event.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import anyio

from ..errors import ApiError
from ..market.calendar import market_of_exchange, session_state
from . import rules
from .limits import SlidingWindow
from .llm import ChatLlm, ChatLlmError
from .sessions import Sessions
from .store import ChatStore, wall_ms

log = logging.getLogger("onlytrade.chat")

CHAT_EVENT_SCHEMA = "room.chat_public_append.v1"
PLAIN_REPLY_RATE = 0.05
PROACTIVE_TICK_S = 5.0
PREVIEW_MESSAGES = 30


class ChatService:
    def __init__(self, ctx, store: ChatStore, sessions: Sessions, *, rng: random.Random | None = None):
        self.ctx = ctx
        self.settings = s = ctx.settings
        self.store = store
        self.sessions = sessions
        self.rng = rng or random.Random()
        self.per_session = SlidingWindow(s.chat_rate_limit_per_min)
        self.per_address = SlidingWindow(s.chat_rate_limit_per_ip_per_min)
        self.llm = ChatLlm(s) if s.chat_llm_enabled and s.openai_api_key else None
        self.publish: Callable[[str, str, Any], Any] = lambda room_id, event, data: None
        self.changed: Callable[[str], Any] = lambda room_id: None
        self.watchers: Callable[[str], int] = lambda room_id: 0
        self._last_narration: dict[str, tuple[int, Any]] = {}
        self._headlines: dict[str, list[str]] = {}
        self.counters = {"narrations": 0, "narrations_throttled": 0, "proactive": 0, "replies_rule": 0,
                         "replies_llm": 0, "llm_failures": 0, "llm_skipped_breaker": 0}

    # ---- on air ---------------------------------------------------------------------------------

    def on_air(self, room_id: str) -> bool:
        """May the agent speak unprompted: running, runtime not paused, kill switch off."""
        rec = self.ctx.svc.registry.get(room_id)
        rt = self.ctx.runtime
        return bool(rec) and rec.get("status") == "running" and not rt.kill_active and rt.paused_reason is None

    # ---- reads ----------------------------------------------------------------------------------

    async def ensure_loaded(self, room_id: str) -> None:
        if not self.store.loaded(room_id):
            await anyio.to_thread.run_sync(self.store.load, room_id)

    def preview(self, room_id: str) -> dict:
        """The packet's `public_chat_preview` (the store must be loaded; the packet builder is a thread)."""
        self.store.load(room_id)
        messages = self.store.public(room_id, PREVIEW_MESSAGES)
        return {"room_id": room_id, "visibility": "public", "messages": messages, "count": len(messages),
                "last_ts_ms": messages[-1]["created_ts_ms"] if messages else None}

    def verify(self, credential: object) -> str:
        """The public id behind a session credential: 400 when blank, 403 when not one we issued."""
        if not str(credential or "").strip():
            raise ApiError(400, "invalid_user_session_id", "user_session_id is required")
        public_id = self.sessions.verify(credential)
        if public_id is None:
            raise ApiError(403, "unverified_user_session",
                           "user_session_id is not a session this server issued; bootstrap a new one")
        return public_id

    # ---- viewer posts ----------------------------------------------------------------------------

    async def post(self, rec: dict | None, room_id: str, body: dict, ip: str) -> dict:
        s = self.settings
        if not s.chat_viewer_posts_enabled:
            raise ApiError(403, "chat_posting_disabled", "viewers cannot post in this show (read-only chat)")
        if not room_id:
            raise ApiError(400, "invalid_room_id")
        public_id = self.verify(body.get("user_session_id"))
        nickname = self.sessions.set_nickname(public_id, body.get("user_nickname"))
        message_type = str(body.get("message_type") or "").strip()
        if message_type not in rules.MESSAGE_TYPES:
            raise ApiError(400, "invalid_message_type", f"message_type must be one of {', '.join(rules.MESSAGE_TYPES)}")
        raw = body.get("text")
        text = rules.clean_text("" if raw is None or raw is False or isinstance(raw, (dict, list)) else raw)
        if not text:
            raise ApiError(400, "invalid_text", "text is empty")
        if rules.utf16_len(text) > s.chat_max_text_len:
            raise ApiError(400, "text_too_long", f"text exceeds {s.chat_max_text_len} characters")
        if rec is None:
            raise ApiError(404, "room_not_found", f"no registered agent {room_id!r}")
        visibility = rules.visibility_of(body.get("visibility"))
        if (message_type == "private_agent_dm") != (visibility == "private"):
            raise ApiError(400, "invalid_visibility", f"{message_type} needs visibility "
                           f"{'private' if message_type == 'private_agent_dm' else 'public'}")
        if rules.bad_mentions(text, rec.get("agent_name")):
            raise ApiError(400, "invalid_mention_target", f"only @agent or @{rules.room_handle(rec.get('agent_name'))} can be mentioned")
        if nickname.casefold() == str(rec.get("agent_name") or "").casefold():
            nickname = self.sessions.set_nickname(public_id, f"{nickname} (viewer)")  # no posing as the host (W-C2)
        for limiter, key in ((self.per_session, f"{room_id}::{public_id}"), (self.per_address, ip)):
            if not limiter.allowed(key):
                raise ApiError(429, "rate_limited", f"too many messages; retry in {limiter.retry_after_s(key)} s")
        self.per_session.hit(f"{room_id}::{public_id}")
        self.per_address.hit(ip)

        message = await self._append(room_id, {
            "id": rules.message_id(), "room_id": room_id, "user_session_id": public_id, "sender_type": "user",
            "sender_name": nickname, "visibility": visibility, "message_type": message_type, "text": text,
        })
        reply = None
        if self._should_reply(rec, message_type, text):
            reply_text = await self._reply_text(rec, room_id, message, nickname)
            if reply_text:
                reply = await self._append(room_id, {
                    "id": rules.message_id("msg_agent_"), "room_id": room_id, "user_session_id": public_id,
                    "sender_type": "agent", "sender_name": rec.get("agent_name") or room_id, "visibility": visibility,
                    "message_type": message_type, "agent_message_kind": "reply", "text": reply_text,
                })
        return {"message": message, "agent_reply": reply}

    def _should_reply(self, rec: dict, message_type: str, text: str) -> bool:
        if rec.get("status") != "running" or self.ctx.runtime.kill_active:
            return False
        if message_type != "public_plain":
            return True
        if self.llm is None:  # a plain message gets a reply only from the LLM (as Node)
            return False
        question = text.endswith(("?", "？")) or any(w in text for w in ("吗", "怎么", "为什么", "什么"))
        return self.rng.random() < PLAIN_REPLY_RATE or self.rng.random() < (0.35 if question else 0.12)

    async def _reply_text(self, rec: dict, room_id: str, message: dict, nickname: str) -> str:
        s = self.settings
        latest = self._latest_decision(room_id)
        mention = rules.clean_text(nickname).replace(" ", "_") or "viewer"
        if self.llm is not None:
            breaker = self.ctx.runtime.breaker_for(room_id)
            if breaker.allow():
                try:
                    text = await self.llm.reply(rec, message, latest)
                    breaker.record_success()
                    self.counters["replies_llm"] += 1
                    return rules.shape(text, max_chars=min(120, s.chat_agent_max_chars), max_sentences=2, mention=mention)
                except ChatLlmError as exc:
                    breaker.record_failure(str(exc))
                    self.counters["llm_failures"] += 1
                    log.warning("room %s: chat LLM failed (%s); rule reply instead", room_id, exc)
            else:
                self.counters["llm_skipped_breaker"] += 1
        if message["message_type"] == "public_plain":
            return ""
        self.counters["replies_rule"] += 1
        return rules.reply_text(mention, latest, self._titles(room_id), f"{message['id']}:{nickname}")

    def _latest_decision(self, room_id: str) -> dict | None:
        history = self.ctx.runtime.history.get(room_id)
        return history[0] if history else None

    def _titles(self, room_id: str) -> list[str]:
        return self._headlines.get(room_id, [])

    # ---- the agent speaks -------------------------------------------------------------------------

    async def on_decision(self, agent_id: str, record: dict, meta: dict) -> None:
        """Decision listener: narrate it (throttled as Node: holds ≥25 s apart, trades ≥60 s)."""
        s = self.settings
        titles = ((meta or {}).get("news_digest") or {}).get("titles") or []
        self._headlines[agent_id] = [str(t) for t in titles if t][:1]  # what the agent read: for replies
        if not s.chat_decision_narration_enabled or not self.on_air_for_decision(agent_id):
            return
        head = (record.get("decisions") or [{}])[0] or {}
        trade = head.get("action") in ("buy", "sell")
        rec = self.ctx.svc.registry.get(agent_id) or {}
        hold_gap = (s.chat_decision_narration_conservative_hold_interval_ms if rec.get("risk_profile") == "conservative"
                    else s.chat_decision_narration_hold_interval_ms)
        gap = s.chat_decision_narration_min_interval_ms if trade else hold_gap
        key = record.get("timestamp") or record.get("cycle_number")
        now = wall_ms()
        last = self._last_narration.get(agent_id)
        if last is not None and (last[1] == key or now - last[0] < gap):
            self.counters["narrations_throttled"] += 1
            return
        text = rules.narration_text(record)
        if not text:
            return
        self._last_narration[agent_id] = (now, key)
        await self.speak(agent_id, rules.shape(text, max_chars=s.chat_agent_max_chars, max_sentences=s.chat_agent_max_sentences),
                         kind="narration")
        self.counters["narrations"] += 1

    def on_air_for_decision(self, agent_id: str) -> bool:
        # A forced step while paused is an operator's explicit decision: narrate it; never under the kill switch.
        rec = self.ctx.svc.registry.get(agent_id)
        return bool(rec) and rec.get("status") == "running" and not self.ctx.runtime.kill_active

    async def speak(self, room_id: str, text: str, *, kind: str) -> dict:
        rec = self.ctx.svc.registry.get(room_id) or {}
        return await self._append(room_id, {
            "id": rules.message_id("msg_agent_"), "room_id": room_id, "user_session_id": rules.BROADCAST,
            "sender_type": "agent", "sender_name": rec.get("agent_name") or room_id, "visibility": "public",
            "message_type": "public_plain", "agent_message_kind": kind, "text": text,
        })

    async def _append(self, room_id: str, record: dict) -> dict:
        stored = await anyio.to_thread.run_sync(self.store.append, room_id, record)
        if stored["visibility"] == "public":
            self.publish(room_id, "chat_public_append", {
                "schema_version": CHAT_EVENT_SCHEMA, "room_id": room_id, "ts_ms": wall_ms(), "message": stored})
            self.changed(room_id)
        return stored

    # ---- proactive lines ----------------------------------------------------------------------------

    async def run_proactive(self, tick_s: float = PROACTIVE_TICK_S) -> None:
        """Every few seconds: a watched, on-air room that has been quiet for the interval gets one line."""
        while True:
            await asyncio.sleep(tick_s)
            try:
                await self.proactive_once()
            except Exception:
                log.exception("proactive chat tick failed")

    async def proactive_once(self) -> list[str]:
        spoke = []
        now = wall_ms()
        for room_id in self.ctx.svc.registry.running_ids():
            if self.watchers(room_id) <= 0 or not self.on_air(room_id) or not self._in_session(room_id):
                continue
            latest = self._latest_decision(room_id)
            if latest is None:
                continue
            await self.ensure_loaded(room_id)
            last = self.store.last_public_ts(room_id)
            if last is not None and now - last < self.settings.chat_public_proactive_interval_ms:
                continue
            text = rules.proactive_text(latest, f"{room_id}:{now // 60000}")
            if text:
                await self.speak(room_id, rules.shape(text, max_chars=self.settings.chat_agent_max_chars,
                                                      max_sentences=self.settings.chat_agent_max_sentences), kind="proactive")
                self.counters["proactive"] += 1
                spoke.append(room_id)
        return spoke

    def _in_session(self, room_id: str) -> bool:
        """Live: only while the room's market is open. Replay: the show runs on the replay clock."""
        if not self.settings.live_mode:
            return True
        rec = self.ctx.svc.registry.get(room_id) or {}
        return bool(session_state(market_of_exchange(str(rec.get("exchange_id") or "")), wall_ms()).get("is_open"))

    async def aclose(self) -> None:
        if self.llm is not None:
            await self.llm.aclose()
