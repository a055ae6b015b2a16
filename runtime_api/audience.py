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
from .chat.tts import Speech
from .services import BootError
from .settings import display_path
from .storage import CorruptFileError

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
