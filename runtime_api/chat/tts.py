"""TTS: the `/api/chat/tts/config` object (Node's full shape) and server-side synthesis.

Only OpenAI speech is offered (no self-hosted engine behind a hard-coded public address, W-T1).
Synthesis speaks only an agent message the room already holds (`message_id`), never free text,
and caches the audio per message, so a thousand viewers cost one synthesis (W-C4).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict

import httpx

from ..errors import ApiError
from ..settings import Settings

VOICES = {"t_001": "onyx", "us_001": "onyx", "t_002": "echo", "t_003": "nova", "us_002": "nova", "t_004": "shimmer"}
DEFAULT_VOICE = "nova"
BASE_ROOMS = ("t_001", "t_002", "t_003", "t_004")
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav"}
CACHE_ENTRIES = 128
TIMEOUT_S = 15.0


def enabled(settings: Settings) -> bool:
    return settings.chat_tts_enabled and bool(settings.openai_api_key)


def voice_for(room_id: str) -> str:
    return VOICES.get(room_id, DEFAULT_VOICE)


def speed_for(settings: Settings, seed: str) -> float:
    jitter = (int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % 41 - 20) / 1000
    return round(min(4.0, max(0.25, settings.chat_tts_tone_speed_energetic + jitter)), 3)


def config(settings: Settings, room_ids: list[str]) -> dict:
    on = enabled(settings)
    rooms = sorted(set(BASE_ROOMS) | set(room_ids))
    profiles = {
        room: {"provider": "openai", "voice": voice_for(room), "speed": speed_for(settings, room),
               "fallback_provider": "none", "model": settings.chat_tts_model,
               "response_format": settings.chat_tts_response_format, "has_override": False}
        for room in rooms
    }
    return {
        "enabled": on,
        "provider": "openai",
        "model": settings.chat_tts_model,
        "response_format": settings.chat_tts_response_format,
        "speed": settings.chat_tts_speed,
        "max_chars": settings.chat_tts_max_chars,
        "voice_map": {room: voice_for(room) for room in rooms},
        "room_profiles": profiles,
        "providers": {
            "openai": {"enabled": on, "model": settings.chat_tts_model, "response_format": settings.chat_tts_response_format},
            "selfhosted": {"enabled": False, "model": "selfhosted", "response_format": "wav", "timeout_ms": 8000, "endpoint": ""},
        },
        "default_provider": "openai",
        "tone_modes": ["energetic"],
        "tone_speed_map": {"energetic": settings.chat_tts_tone_speed_energetic},
    }


def speakable(text: str, max_chars: int) -> str:
    """Whitespace collapsed, cut at the last sentence end past 55 % of the limit (Node's rule)."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    stop = max(cut.rfind(c) for c in "。！？!?.")
    return cut[: stop + 1] if stop >= int(max_chars * 0.55) else cut.rstrip("，,：:")


class Speech:
    """OpenAI `/audio/speech`, one call per agent message, cached (LRU) by room and message id."""

    def __init__(self, settings: Settings, *, client: httpx.AsyncClient | None = None):
        self.settings = settings
        self._client = client
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.synth_calls = 0

    async def audio(self, room_id: str, message: dict) -> tuple[bytes, dict]:
        s = self.settings
        voice, speed = voice_for(room_id), speed_for(s, str(message.get("id")))
        headers = {"Content-Type": MEDIA_TYPES.get(s.chat_tts_response_format, "application/octet-stream"),
                   "Cache-Control": "no-store", "x-tts-provider": "openai", "x-tts-provider-requested": "openai",
                   "x-tts-fallback-used": "false", "x-tts-model": s.chat_tts_model, "x-tts-voice": voice,
                   "x-tts-speed": str(speed), "x-tts-tone": "energetic"}
        key = (room_id, str(message.get("id")))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key], headers
        if self._client is None:
            self._client = httpx.AsyncClient()
        body = {"model": s.chat_tts_model, "voice": voice, "speed": speed, "response_format": s.chat_tts_response_format,
                "input": speakable(str(message.get("text") or ""), s.chat_tts_max_chars)}
        self.synth_calls += 1
        try:
            resp = await self._client.post(s.openai_base_url.rstrip("/") + "/audio/speech", json=body,
                                           headers={"Authorization": f"Bearer {s.openai_api_key}"}, timeout=TIMEOUT_S)
        except httpx.HTTPError:
            raise ApiError(502, "chat_tts_dispatch_failed", "the speech provider did not answer") from None
        if resp.status_code != 200 or not resp.content:
            raise ApiError(502, "chat_tts_dispatch_failed", f"the speech provider answered {resp.status_code}")
        self._cache[key] = resp.content
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return resp.content, headers

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
