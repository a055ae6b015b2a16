"""The per-agent LLM breaker and `run_decision` end to end against the fake chat-completions server."""

from __future__ import annotations

import json

import httpx
import pytest

from runtime_api.decision import LlmBreaker, LlmDecider, run_decision

from .helpers import TRADER, intraday_now, linear_candidate, portfolio
from .test_llm_decision import KEY

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self, now: int = 1_000_000):
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_recovers_half_open():
    clock = Clock()
    breaker = LlmBreaker(3, 60_000, clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure("openai_timeout")
    assert breaker.status()["state"] == "closed"
    assert breaker.allow()
    breaker.record_failure("openai_http_500")
    status = breaker.status()
    assert status["state"] == "open" and status["opened_at_ms"] == clock.now
    assert status["consecutive_failures"] == 3 and status["last_failure_reason"] == "openai_http_500"

    assert breaker.allow() is False
    clock.now += 59_999
    assert breaker.allow() is False and breaker.status()["skipped_total"] == 2

    clock.now += 1
    assert breaker.state == "half_open"
    assert breaker.allow() is True  # the one trial call
    assert breaker.allow() is False  # no second call while the trial is in flight
    breaker.record_failure("openai_timeout")
    assert breaker.state == "open" and breaker.opened_at_ms == clock.now

    clock.now += 60_000
    assert breaker.allow() is True
    breaker.record_success()
    assert breaker.status() == {
        "state": "closed", "consecutive_failures": 0, "opened_at_ms": None, "last_failure_reason": "openai_timeout",
        "failures_total": 4, "successes_total": 1, "skipped_total": 3,
    }


def test_a_lost_trial_call_does_not_wedge_the_breaker():
    clock = Clock()
    breaker = LlmBreaker(1, 1000, clock)
    breaker.record_failure("openai_timeout")
    clock.now += 1000
    assert breaker.allow() is True  # the trial call is then cancelled: neither success nor failure
    assert breaker.allow() is False
    clock.now += 1000
    assert breaker.allow() is True


def test_a_success_resets_the_failure_streak():
    breaker = LlmBreaker(2, 1000, Clock())
    breaker.record_failure("openai_timeout")
    breaker.record_success()
    breaker.record_failure("openai_timeout")
    assert breaker.state == "closed"


def test_breaker_from_settings(settings):
    breaker = LlmBreaker.from_settings(settings)
    assert (breaker.failures, breaker.cooldown_ms) == (3, 300_000)


@pytest.fixture
def cycle_settings(settings, fake_openai):
    return settings.replace(
        openai_api_key=KEY, openai_base_url=fake_openai.base_url, agent_openai_model="agent-model",
        agent_llm_timeout_ms=1000,
    )


async def cycle(settings, llm, breaker, n, *, kill=False):
    cand = linear_candidate("600519.SH")
    return await run_decision(
        trader={**TRADER, "stock_pool": ["600519.SH"]}, cycle_number=n, candidates={"600519.SH": cand},
        portfolio=portfolio(100_000), memory_state=None, extras=None, settings=settings, market="CN-A",
        now_ms=intraday_now(cand), now_iso="2026-02-12T01:30:00.000Z", llm=llm, breaker=breaker,
        kill_switch_active=kill,
    )


async def test_run_decision_falls_back_opens_the_breaker_and_recovers(cycle_settings, fake_openai):
    clock = Clock()
    breaker = LlmBreaker(3, 60_000, clock)
    fake_openai.set("http_error", status=500, body="upstream down")
    async with httpx.AsyncClient() as client:
        llm = LlmDecider(cycle_settings, client=client)
        for n in (1, 2, 3):
            out = await cycle(cycle_settings, llm, breaker, n)
            assert out.record["decision_source"] == "rule.heuristic"
            assert out.record["llm"]["failure_reason"] == "openai_http_500"
        assert fake_openai.request_count == 3
        assert out.record["llm"]["breaker"] == "open"

        skipped = await cycle(cycle_settings, llm, breaker, 4)
        assert fake_openai.request_count == 3
        assert skipped.record["llm"] == {
            "used": False, "model": "agent-model", "failure_reason": None, "skip_reason": "breaker_open", "breaker": "open",
            "latency_ms": None,  # no call, no latency
        }

        clock.now += 60_000
        fake_openai.set("decision", decision={"action": "buy", "symbol": "600519.SH", "confidence": 0.7, "quantity_shares": 100, "reasoning": "trend"})
        recovered = await cycle(cycle_settings, llm, breaker, 5)
        assert fake_openai.request_count == 4
        assert recovered.record["decision_source"] == "llm.openai"
        assert recovered.record["llm"]["used"] is True and recovered.record["llm"]["breaker"] == "closed"
        assert isinstance(recovered.record["llm"]["latency_ms"], int)
        assert recovered.fill["source"] == "llm.openai" and recovered.fill["executed"] is True
        for outcome in (out, skipped, recovered):
            dumped = json.dumps([outcome.record, outcome.fill, outcome.audit_fields], ensure_ascii=False)
            assert KEY not in dumped


async def test_run_decision_skips_the_model_when_it_must(cycle_settings, fake_openai):
    async with httpx.AsyncClient() as client:
        llm = LlmDecider(cycle_settings, client=client)
        killed = await cycle(cycle_settings, llm, None, 1, kill=True)
        assert killed.record["llm"]["skip_reason"] == "kill_switch_active"
        disabled = await cycle(cycle_settings, None, None, 2)
        assert disabled.record["llm"]["skip_reason"] == "llm_disabled"
        cand = linear_candidate("600519.SH", intraday=3)
        gated = await run_decision(
            trader={**TRADER, "stock_pool": ["600519.SH"]}, cycle_number=3, candidates={"600519.SH": cand},
            portfolio=portfolio(100_000), memory_state=None, extras=None, settings=cycle_settings, market="CN-A",
            now_ms=intraday_now(cand), now_iso="2026-02-12T01:30:00.000Z", llm=llm, breaker=None,
            kill_switch_active=False,
        )
    assert gated.record["llm"]["skip_reason"] == "readiness_error" and gated.audit_fields["forced_hold"] is True
    assert fake_openai.request_count == 0
