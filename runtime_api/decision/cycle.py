"""One decision cycle for one agent: context, optional LLM call (behind its breaker), simulation."""

from __future__ import annotations

import functools
import logging
import time

import anyio

from runtime_api.decision.context import build_cycle_context
from runtime_api.decision.llm import LlmBreaker, LlmDecider, LlmDecision, LlmError
from runtime_api.decision.simulator import DecisionOutcome, create_decision
from runtime_api.settings import Settings

log = logging.getLogger(__name__)


async def run_decision(
    *,
    trader: dict,
    cycle_number: int,
    candidates: dict[str, dict],
    portfolio: dict,
    memory_state: dict | None,
    extras: dict | None,
    settings: Settings,
    market: str,
    now_ms: int,
    now_iso: str,
    llm: LlmDecider | None,
    breaker: LlmBreaker | None,
    kill_switch_active: bool,
    limiter: anyio.CapacityLimiter | None = None,
) -> DecisionOutcome:
    """Build the context off the event loop, ask the model when allowed, fall back to the rules.

    `limiter` bounds the worker threads doing the CPU work (the runtime passes one thread, so
    concurrent agents never starve the event loop of the GIL).
    """
    context = await anyio.to_thread.run_sync(
        functools.partial(
            build_cycle_context,
            trader=trader,
            cycle_number=cycle_number,
            now_ms=now_ms,
            candidates=candidates,
            portfolio=portfolio,
            memory_state=memory_state,
            extras=extras,
            settings=settings,
            market=market,
        ),
        limiter=limiter,
    )
    decision: LlmDecision | None = None
    failure: str | None = None
    skip: str | None = None
    latency_ms: int | None = None
    if context.get("llm_decision"):
        skip = "readiness_error"
    elif llm is None:
        skip = "llm_disabled"
    elif kill_switch_active:
        skip = "kill_switch_active"
    elif breaker is not None and not breaker.allow():
        skip = "breaker_open"
    else:
        started = time.perf_counter()
        try:
            decision = await llm.decide(context, trader, at_ms=now_ms)
        except LlmError as exc:
            failure = exc.reason
        except Exception:  # a bug in parsing must not stop the cycle: fall back to the rules
            log.exception("llm decision failed unexpectedly for %s", trader.get("agent_id"))
            failure = "openai_unexpected_error"
        latency_ms = int((time.perf_counter() - started) * 1000)
        if breaker is not None:
            if failure is None:
                breaker.record_success()
            else:
                breaker.record_failure(failure)
        if failure is not None:
            log.warning("llm decision failed for %s: %s", trader.get("agent_id"), failure)
    return await anyio.to_thread.run_sync(
        functools.partial(
            create_decision,
            context=context,
            trader=trader,
            llm=decision,
            llm_failure=failure,
            portfolio=portfolio,
            settings=settings,
            cycle_number=cycle_number,
            now_iso=now_iso,
            now_ms=now_ms,
            llm_skip_reason=skip,
            llm_latency_ms=latency_ms,
            breaker_state=breaker.state if breaker is not None else None,
        ),
        limiter=limiter,
    )
