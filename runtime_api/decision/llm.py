"""The LLM decider: one OpenAI-compatible chat-completions call per decision, plus a per-agent breaker.

The API key is sent in the Authorization header only; it never appears in an exception, a log
line or a record (server error bodies are scrubbed before they are kept).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import anyio
import httpx
import orjson

from runtime_api import clock
from runtime_api.decision import prompts
from runtime_api.decision.features import js_round, number
from runtime_api.recording.llm_log import LlmExchangeLog
from runtime_api.market.calendar import trading_day_of
from runtime_api.settings import Settings

log = logging.getLogger(__name__)

ACTION_ALIASES = ("action", "decision", "signal", "side")
SYMBOL_ALIASES = ("symbol", "ticker", "code")
CONFIDENCE_ALIASES = ("confidence", "score", "probability")
QUANTITY_ALIASES = ("quantity_shares", "quantity", "shares", "qty", "size")
REASONING_ALIASES = ("reasoning", "rationale", "thesis", "reason", "explanation", "analysis")
DEFAULT_REASONING = "No strong edge from current features; maintain discipline."


class LlmError(Exception):
    """A failed decision call; `reason` is a stable code such as `openai_http_500`."""

    def __init__(self, reason: str, detail: str | None = None):
        super().__init__(reason if not detail else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class LlmDecision:
    action: str
    symbol: str
    confidence: float
    quantity: int
    reasoning: str
    model: str
    system_prompt: str
    input_prompt: str
    cot_trace: str
    source: str = "openai"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class LlmBreaker:
    """Per-agent circuit breaker: N consecutive failures open it for a cool-down, then one trial call."""

    def __init__(self, failures: int, cooldown_ms: int, now_ms: Callable[[], int] = wall_clock_ms):
        self.failures = max(1, int(failures))
        self.cooldown_ms = max(0, int(cooldown_ms))
        self._now = now_ms
        self._state = "closed"
        self._trial_started_ms: int | None = None  # a half-open trial call in flight (expires after a cool-down)
        self.consecutive_failures = 0
        self.opened_at_ms: int | None = None
        self.last_failure_reason: str | None = None
        self.failures_total = 0
        self.successes_total = 0
        self.skipped_total = 0

    @classmethod
    def from_settings(cls, settings: Settings, now_ms: Callable[[], int] = wall_clock_ms) -> LlmBreaker:
        return cls(settings.agent_llm_breaker_failures, settings.agent_llm_breaker_cooldown_ms, now_ms)

    @property
    def state(self) -> str:
        if self._state == "open" and self._now() - (self.opened_at_ms or 0) >= self.cooldown_ms:
            return "half_open"
        return self._state

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        now = self._now()
        trial_lost = self._trial_started_ms is not None and now - self._trial_started_ms >= self.cooldown_ms
        if state == "half_open" and (self._trial_started_ms is None or trial_lost):
            self._state = "half_open"
            self._trial_started_ms = now
            return True
        self.skipped_total += 1
        return False

    def record_success(self) -> None:
        self.successes_total += 1
        self.consecutive_failures = 0
        self._state = "closed"
        self._trial_started_ms = None
        self.opened_at_ms = None

    def record_failure(self, reason: str) -> None:
        self.failures_total += 1
        self.consecutive_failures += 1
        self.last_failure_reason = reason
        if self._state == "half_open" or self.consecutive_failures >= self.failures:
            self._state = "open"
            self.opened_at_ms = self._now()
        self._trial_started_ms = None

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "opened_at_ms": self.opened_at_ms,
            "last_failure_reason": self.last_failure_reason,
            "failures_total": self.failures_total,
            "successes_total": self.successes_total,
            "skipped_total": self.skipped_total,
        }


# ---- response parsing -------------------------------------------------------------------------


def parse_json(text: str) -> Any:
    """JSON, or the substring from the first `{` to the last `}`; None when neither parses."""
    try:
        return json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start >= 0 and end > start:
            try:
                return json.loads(text[start : end + 1])
            except ValueError:
                return None
        return None


def message_content(parsed: Any) -> Any:
    """`choices[0].message.content` of a chat-completions body, or None."""
    choices = parsed.get("choices") if isinstance(parsed, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    return message.get("content") if isinstance(message, dict) else None


def _valid_shape(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("action"), str)
        and value["action"].strip().lower() in ("buy", "sell", "hold")
        and isinstance(value.get("symbol"), str)
        and bool(value["symbol"].strip())
        and number(value.get("confidence")) is not None
        and number(value.get("quantity_shares")) is not None
        and isinstance(value.get("reasoning"), str)
    )


def _first(value: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if value.get(key) is not None:
            return value[key]
    return None


def extract_decision(value: Any, fallback_symbol: str) -> dict | None:
    """Envelope, bare decision, decision without symbol, or a loose alias coercion, in that order."""
    if not isinstance(value, dict):
        return None
    decisions = value.get("decisions")
    if isinstance(decisions, list) and len(decisions) == 1 and _valid_shape(decisions[0]):
        return decisions[0]
    if _valid_shape(value):
        return value
    if isinstance(decisions, list) and decisions and isinstance(decisions[0], dict):
        value = decisions[0]
    with_symbol = {**value, "symbol": value.get("symbol") or fallback_symbol}
    if _valid_shape(with_symbol):
        return with_symbol
    loose = {
        "action": str(_first(value, ACTION_ALIASES) or "").strip().lower(),
        "symbol": str(_first(value, SYMBOL_ALIASES) or fallback_symbol).strip(),
        "confidence": number(_first(value, CONFIDENCE_ALIASES)),
        "quantity_shares": number(_first(value, QUANTITY_ALIASES)),
        "reasoning": str(_first(value, REASONING_ALIASES) or ""),
    }
    if loose["confidence"] is None:
        loose["confidence"] = 0.6
    if loose["quantity_shares"] is None:
        loose["quantity_shares"] = 0
    return loose if _valid_shape(loose) else None


def normalize(raw: dict, lot_size: int) -> dict[str, Any]:
    """Action in buy/sell/hold, confidence 0.51..0.95, quantity in whole lots (at least one)."""
    lot = max(1, int(lot_size))
    action = str(raw.get("action") or "").strip().lower()
    action = action if action in ("buy", "sell", "hold") else "hold"
    conf = number(raw.get("confidence"))
    conf = js_round(min(0.95, max(0.51, 0.6 if conf is None else conf)), 2)
    requested = number(raw.get("quantity_shares"))
    requested = math.floor(requested) if requested is not None else (0 if action == "hold" else lot)
    quantity = 0 if action == "hold" else max(lot, max(0, requested // lot) * lot)
    text = str(raw.get("reasoning") or "").strip()
    return {
        "action": action,
        "symbol": str(raw.get("symbol") or "").strip().upper(),
        "confidence": conf,
        "quantity": int(quantity),
        "reasoning": text[:320] if text else DEFAULT_REASONING,
    }


# ---- the decider ------------------------------------------------------------------------------


class LlmDecider:
    """POSTs `{OPENAI_BASE_URL}/chat/completions` and turns the answer into an `LlmDecision`."""

    def __init__(self, settings: Settings, *, client: httpx.AsyncClient | None = None,
                 exchanges: LlmExchangeLog | None = None, recorded: bool = False):
        """`exchanges` records every call; with `recorded` (REPLAY_LLM=recorded) answers come from it instead."""
        self.settings = settings
        self.exchanges = exchanges
        self.recorded = recorded
        self.model = settings.decision_model
        self.endpoint = settings.openai_base_url.rstrip("/") + "/chat/completions"
        self.timeout_s = max(1000, settings.agent_llm_timeout_ms) / 1000
        self.compact = settings.agent_llm_dev_token_saver
        self._key = settings.openai_api_key
        self._client = client
        self._owns_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def request_body(self, context: dict, trader: dict) -> dict[str, Any]:
        market = context.get("market") or "CN-A"
        lot = int((context.get("constraints") or {}).get("lot_size") or 100)
        gpt5 = prompts.is_gpt5(self.model)
        system = prompts.system_prompt(trader, compact=self.compact, model=self.model, market=market, lot=lot)
        body: dict[str, Any] = {
            "model": self.model,
            "max_completion_tokens": max(80, self.settings.agent_llm_max_output_tokens),
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompts.user_prompt(context, trader, compact=self.compact)},
            ],
        }
        if not gpt5:
            symbols = prompts.allowed_symbols(context, 8 if self.compact else 12)
            schema = prompts.decision_schema(symbols, reasoning_max=160 if self.compact else 320)
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
            body["temperature"] = 0 if self.compact else 0.15
        return body

    async def _post(self, body: dict) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._key}"}
        try:
            with anyio.fail_after(self.timeout_s):
                return await self._http().post(
                    self.endpoint, content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                    headers=headers, timeout=self.timeout_s,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise LlmError("openai_timeout") from None
        except httpx.HTTPError as exc:
            raise LlmError("openai_network_error", self._scrub(type(exc).__name__)) from None

    def _exchange_key(self, context: dict, trader: dict, at_ms: int | None) -> dict[str, Any]:
        at = clock.now_ms() if at_ms is None else int(at_ms)
        agent = str(trader.get("agent_id") or trader.get("trader_id") or context.get("trader_id") or "")
        return {"agent_id": agent, "day": trading_day_of(at, context.get("market") or "CN-A"), "bar_ts_ms": at}

    def _recorded_answer(self, key: dict[str, Any]) -> tuple[int, str]:
        found = self.exchanges.answer(key["agent_id"], key["day"], key["bar_ts_ms"]) if self.exchanges else None
        if found is None or not isinstance((found.get("response") or {}).get("body"), str):
            raise LlmError("recorded_answer_missing", f"{key['agent_id']} {key['day']} bar {key['bar_ts_ms']}")
        return int(found["response"].get("status") or 200), found["response"]["body"]

    async def _record(self, key: dict[str, Any], body: dict, status: int | None, text: str | None, latency_ms: int,
                      outcome: str) -> None:
        if self.exchanges is None or self.recorded or not key["agent_id"]:
            return
        record = {**key, "model": self.model, "endpoint": self.endpoint,
                  "request": orjson.loads(self._scrub(json.dumps(body, ensure_ascii=False))),
                  "response": None if status is None else {"status": status, "body": self._scrub(text or "")},
                  "latency_ms": latency_ms, "outcome": outcome, "recorded_at": clock.now_iso()}
        try:
            await anyio.to_thread.run_sync(self.exchanges.append, record)
        except Exception:  # a full disk must not turn a good decision into a failure
            log.exception("llm exchange not recorded for %s", key["agent_id"])

    async def decide(self, context: dict, trader: dict, *, at_ms: int | None = None) -> LlmDecision:
        """One model decision for this context; raises `LlmError` on any failure (no retry).

        `at_ms` is the decision clock (the replay bar); it keys the recorded exchange.
        """
        body = self.request_body(context, trader)
        key = self._exchange_key(context, trader, at_ms)
        if self.recorded:
            status, text = self._recorded_answer(key)
            return self._interpret(status, text, body, context)
        started = time.monotonic()
        try:
            response = await self._post(body)
        except LlmError as exc:
            await self._record(key, body, None, None, int((time.monotonic() - started) * 1000), exc.reason)
            raise
        latency_ms = int((time.monotonic() - started) * 1000)
        try:
            decision = self._interpret(response.status_code, response.text, body, context)
        except LlmError as exc:
            await self._record(key, body, response.status_code, response.text, latency_ms, exc.reason)
            raise
        await self._record(key, body, response.status_code, response.text, latency_ms, "ok")
        return decision

    def _interpret(self, status: int, text: str, body: dict, context: dict) -> LlmDecision:
        if status < 200 or status >= 300:
            raise LlmError(f"openai_http_{status}", self._scrub(text[:160]))
        content = message_content(parse_json(text))
        if not isinstance(content, str) or not content.strip():
            raise LlmError("openai_empty_message")
        raw = parse_json(content)
        if raw is None:
            raise LlmError("openai_invalid_json_content")
        allowed = prompts.allowed_symbols(context, 20)
        extracted = extract_decision(raw, allowed[0] if allowed else str(context.get("symbol") or ""))
        if extracted is None:
            raise LlmError("openai_invalid_decision_shape")
        lot = int((context.get("constraints") or {}).get("lot_size") or 100)
        decision = normalize(extracted, lot)
        return LlmDecision(
            **decision,
            model=self.model,
            system_prompt=body["messages"][0]["content"],
            input_prompt=body["messages"][1]["content"],
            cot_trace=str(extracted.get("reasoning") or ""),
        )
