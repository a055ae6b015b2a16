"""The chat LLM: one short OpenAI-compatible completion for an agent reply.

Used only when CHAT_LLM_ENABLED and OPENAI_API_KEY are set, and only while the agent's decision
breaker allows a call (a failing provider is not hammered by chat). Viewer text goes in as a
quoted JSON field of the user message, never into the system prompt.
"""

from __future__ import annotations

import json

import httpx

from ..settings import Settings


class ChatLlmError(Exception):
    pass


class ChatLlm:
    def __init__(self, settings: Settings, *, client: httpx.AsyncClient | None = None):
        self.settings = settings
        self.model = settings.chat_openai_model or settings.openai_model
        self._client = client

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def reply(self, trader: dict, incoming: dict, latest_decision: dict | None) -> str:
        s = self.settings
        system = (
            f"You are {trader.get('agent_name') or trader.get('agent_id')}, the host agent of a Chinese A-share paper-trading "
            "livestream room. Answer the viewer in 1-2 short Chinese sentences (at most 100 characters), plain text, "
            "no markdown. Never claim to place real broker orders and never give personal investment advice. "
            f"Trading style: {trader.get('trading_style') or ''}; personality: {trader.get('personality') or ''}."
        )
        head = ((latest_decision or {}).get("decisions") or [{}])[0] or {}
        user = json.dumps({
            "incoming_message": {k: incoming.get(k) for k in ("message_type", "visibility", "text")},
            "latest_decision": {k: head.get(k) for k in ("symbol", "action", "confidence")} if head else None,
        }, ensure_ascii=False)
        body = {"model": self.model, "max_completion_tokens": 140,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        if not self.model.startswith("gpt-5"):
            body["temperature"] = 0.56
        try:
            resp = await self._http().post(
                s.openai_base_url.rstrip("/") + "/chat/completions", json=body,
                headers={"Authorization": f"Bearer {s.openai_api_key}"}, timeout=s.chat_llm_timeout_ms / 1000)
        except httpx.TimeoutException:
            raise ChatLlmError("chat_llm_timeout") from None
        except httpx.HTTPError:
            raise ChatLlmError("chat_llm_network_error") from None
        if resp.status_code != 200:
            raise ChatLlmError(f"chat_llm_http_{resp.status_code}")
        try:
            text = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ChatLlmError("chat_llm_bad_response") from None
        if not isinstance(text, str) or not text.strip():
            raise ChatLlmError("chat_llm_empty")
        return text.replace("```", " ").strip()
