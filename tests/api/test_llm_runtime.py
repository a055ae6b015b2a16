"""The runtime with an OpenAI-compatible backend: decisions, recorded failures, the per-agent breaker."""

from __future__ import annotations

import anyio
import pytest

from decision.fake_openai import FakeOpenAI

from .conftest import data_of, make_settings, open_api

pytestmark = pytest.mark.anyio


async def one_llm_agent(root, fake: FakeOpenAI, **env: str):
    """An app deciding with the fake LLM, the replay paused, demo_momentum running: cycles only when a test asks."""
    settings = make_settings(root, AGENT_LLM_ENABLED="true", OPENAI_BASE_URL=fake.base_url, AGENT_STRICT_SYMBOL_LOOP="false", **env)
    handle, lifespan = await open_api(settings)
    data_of(await handle.control("/api/replay/runtime/control", {"action": "pause"}))
    data_of(await handle.control("/api/agents/demo_momentum/register"))
    data_of(await handle.control("/api/agents/demo_momentum/start"))
    return handle, lifespan


async def test_llm_decides_then_failures_are_recorded_and_the_breaker_opens(root):
    with FakeOpenAI() as fake:
        fake.set(mode="decision", decision={"action": "buy", "symbol": "601318.SH", "confidence": 0.7,
                                             "quantity_shares": 100, "reasoning": "uptrend intact"})
        handle, lifespan = await one_llm_agent(root, fake, OPENAI_API_KEY="sk-llm-secret", AGENT_OPENAI_MODEL="decider-model",
                                               AGENT_LLM_BREAKER_FAILURES="2")
        try:

            async def step() -> dict:
                data_of(await handle.control("/api/agent/runtime/control", {"action": "step"}))
                return data_of(await handle.get("/api/decisions/latest", params={"trader_id": "demo_momentum", "limit": 1}))[0]

            first = await step()
            assert first["decision_source"] == "llm.openai" and first["llm"]["used"] is True
            assert first["runtime_meta"]["llm_model"] == "decider-model"
            assert fake.requests[-1]["body"]["model"] == "decider-model"

            fake.set(mode="http_error", status=500, body='{"error": "boom"}')
            for _ in range(2):
                failed = await step()
                assert failed["decision_source"] == "rule.heuristic"
                assert failed["llm"]["failure_reason"].startswith("openai_http_500")
            calls = fake.request_count
            skipped = await step()  # breaker open: no call, heuristic decides, and the record says why
            assert fake.request_count == calls
            assert skipped["decision_source"] == "rule.heuristic" and skipped["llm"]["skip_reason"] == "breaker_open"

            status = data_of(await handle.get("/api/agent/runtime/status"))
            assert status["llm"]["failures"] == {"openai_http_500": 2}
            agent = next(t for t in status["traders"] if t["trader_id"] == "demo_momentum")
            assert agent["llm_breaker"]["state"] == "open" and agent["llm_breaker"]["consecutive_failures"] == 2
            assert "sk-llm-secret" not in str(status) and "sk-llm-secret" not in str(skipped)
        finally:
            await handle.client.aclose()
            await lifespan.__aexit__(None, None, None)


async def test_a_step_during_a_running_decision_waits_for_it_and_decides_for_every_agent(root):
    with FakeOpenAI() as fake:
        fake.set(mode="decision", decision={"action": "hold", "symbol": "601318.SH", "confidence": 0.5,
                                             "reasoning": "wait"}, delay_s=1.0)
        handle, lifespan = await one_llm_agent(root, fake, OPENAI_API_KEY="sk-x")
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(handle.ctx.runtime.run_cycle)  # the timer's cycle, slowed by the LLM
                while "demo_momentum" not in handle.ctx.runtime.in_flight:
                    await anyio.sleep(0.01)
                step = data_of(await handle.control("/api/agent/runtime/control", {"action": "step"}))
            assert step["cycle"]["ran"] is True
            assert [d["trader_id"] for d in step["cycle"]["decisions"]] == ["demo_momentum"]
            assert fake.request_count == 2  # the timer's decision, then the step's own
        finally:
            await handle.client.aclose()
            await lifespan.__aexit__(None, None, None)
