"""The audience side of one app: chat sessions, room chat, the bet board and speech.

`install_audience(ctx)` builds them (after the viewer streams, whose hub carries the chat events),
hooks narration to the decision loop and stores the result in `ctx.extra["audience"]`; the app's
lifespan runs `tasks()` and `aclose()`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .bets.ledger import Ledger
from .bets.service import BetsService
from .chat.service import ChatService
from .chat.sessions import Sessions, load_key
from .chat.store import ChatStore
from .chat.tts import Speech, enabled as tts_enabled
from .services import BootError
from .settings import display_path
from .state.storage import CorruptFileError

KEY = "audience"


@dataclass
class Audience:
    sessions: Sessions
    chat: ChatService
    bets: BetsService | None
    speech: Speech

    def tasks(self) -> list[asyncio.Task]:
        out = [asyncio.create_task(self.chat.run_proactive(), name="chat-proactive")]
        if self.bets is not None:
            out.append(asyncio.create_task(self.bets.run(), name="bets-settlement"))
        return out

    async def aclose(self) -> None:
        await self.chat.aclose()
        await self.speech.aclose()


def install_audience(ctx) -> Audience:
    s = ctx.settings
    sessions = Sessions(load_key(s.resolve(s.runtime_state_dir) / "chat-session.key"))
    chat = ChatService(ctx, ChatStore(s.resolve(s.chat_dir), retention=s.chat_retention_messages), sessions)
    streams = ctx.extra.get("viewer_streams")
    if streams is not None:
        hub = streams.hub
        chat.publish = hub.publish
        chat.changed = hub.invalidate  # the next packet (timer or request) carries the new preview
        chat.watchers = lambda room_id: (hub.stats(room_id) or {}).get("subscribers", 0)
    ctx.runtime.listeners.append(chat.on_decision)
    bets = None
    if s.bets_enabled:
        try:
            ledger = Ledger(s.resolve(s.bets_ledger_path))
        except CorruptFileError as exc:
            raise BootError(f"corrupt bets ledger {display_path(s, exc.path)}: {exc.reason}; "
                            "fix or move it aside, it is never overwritten") from exc
        bets = BetsService(ctx, ledger, sessions)
    audience = Audience(sessions=sessions, chat=chat, bets=bets, speech=Speech(s))
    ctx.extra[KEY] = audience
    return audience


def audience_of(ctx) -> Audience:
    return ctx.extra[KEY]


def audience_status(ctx) -> dict:
    """`chat_streaming` of the runtime status: what the audience features do, for operators."""
    s = ctx.settings
    aud = audience_of(ctx)
    return {
        "viewer_posts_enabled": s.chat_viewer_posts_enabled,
        "narration_enabled": s.chat_decision_narration_enabled,
        "narration_intervals_ms": {"trade": s.chat_decision_narration_min_interval_ms,
                                   "hold": s.chat_decision_narration_hold_interval_ms,
                                   "conservative_hold": s.chat_decision_narration_conservative_hold_interval_ms},
        "proactive_interval_ms": s.chat_public_proactive_interval_ms,
        "llm_enabled": aud.chat.llm is not None,
        "tts_enabled": tts_enabled(s),
        "counters": dict(aud.chat.counters),
        "store": {"rooms_loaded": aud.chat.store.rooms_loaded, "retention": aud.chat.store.retention,
                  "compactions": aud.chat.store.compactions},
        "speech": {"synth_calls": aud.speech.synth_calls},
        "bets": None if aud.bets is None else {"settlements": aud.bets.settlements, "ledger_writes": aud.bets.ledger.writes,
                                               "replay_round": aud.bets.ledger.state.get("replay_round", 0)},
    }
