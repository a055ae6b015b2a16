"""Control plane against a real process: the kill switch survives SIGKILL; a reset beats an in-flight cycle."""

from __future__ import annotations

import signal
import threading
import time

from decision.fake_openai import FakeOpenAI

from .server import RuntimeProcess


def data(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def test_kill_switch_survives_sigkill_and_restart(root):
    server = RuntimeProcess(root).start()
    try:
        data(server.control("/api/agents/t_001/register"))
        data(server.control("/api/agents/t_001/start"))
        on = data(server.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "incident-42"}))
        assert on["kill_switch"]["active"] is True
    finally:
        server.stop(signal.SIGKILL)
    with RuntimeProcess(root, port=server.port) as again, again.client() as c:
        status = data(c.get("/api/agent/runtime/status"))
        assert status["kill_switch"]["active"] is True and status["kill_switch"]["reason"] == "incident-42"
        assert status["running"] is False and status["paused_reason"] == "kill_switch"
        step = again.control("/api/agent/runtime/control", {"action": "step"})
        assert step.status_code == 423 and step.json()["error"] == "kill_switch_active"
        assert "kill switch active at boot" in again.read_log()


def test_reset_during_in_flight_cycle_wins(root):
    with FakeOpenAI() as fake:
        fake.set(mode="decision", delay_s=2.5, decision={
            "action": "buy", "symbol": "601318.SH", "confidence": 0.8, "quantity_shares": 300, "reasoning": "slow conviction"})
        env = {"AGENT_LLM_ENABLED": "true", "OPENAI_API_KEY": "sk-race-secret", "OPENAI_BASE_URL": fake.base_url,
               "AGENT_LLM_TIMEOUT_MS": "10000", "AGENT_STRICT_SYMBOL_LOOP": "false"}
        with RuntimeProcess(root, env) as server, server.client() as c:
            data(server.control("/api/replay/runtime/control", {"action": "pause"}))
            data(server.control("/api/agents/demo_momentum/register"))
            data(server.control("/api/agents/demo_momentum/start"))
            data(server.control("/api/agent/runtime/control", {"action": "pause"}))

            result = {}
            stepper = threading.Thread(target=lambda: result.update(step=server.control("/api/agent/runtime/control", {"action": "step"})))
            stepper.start()
            deadline = time.monotonic() + 10
            while fake.request_count == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert fake.request_count == 1, "the cycle never reached the LLM"

            started = time.monotonic()
            reset = data(server.control("/api/dev/reset-agent", {
                "trader_id": "demo_momentum", "confirm": "demo_momentum", "reset_memory": True}))
            assert time.monotonic() - started < 2.0, "the reset waited for the slow LLM"
            assert reset["memory"]["stats"]["decisions"] == 0
            stepper.join(15)

            step = data(result["step"])
            assert step["cycle"]["decisions"] == []  # the in-flight decision was discarded
            snap = data(c.get("/api/agent/memory", params={"trader_id": "demo_momentum"}))
            assert snap["holdings"] == [] and snap["stats"]["decisions"] == 0
            status = data(c.get("/api/agent/runtime/status"))
            assert status["discarded_cycles"] == 1
            assert "sk-race-secret" not in server.read_log()


def test_pause_after_factory_reset_survives_a_restart(root):
    server = RuntimeProcess(root).start()
    try:
        data(server.control("/api/agents/t_001/register"))
        data(server.control("/api/agents/t_001/start"))
        reset = data(server.control("/api/dev/factory-reset", {"confirm": "RESET"}))
        assert reset["state"]["runtime"]["paused_reason"] == "after_reset"
    finally:
        server.stop(signal.SIGKILL)
    with RuntimeProcess(root, port=server.port) as again, again.client() as c:
        status = data(c.get("/api/agent/runtime/status"))
        assert status["running"] is False and status["paused_reason"] == "after_reset"
        assert "paused (after_reset) since before this boot" in again.read_log()
        assert data(again.control("/api/agent/runtime/control", {"action": "resume"}))["state"]["running"] is True
    with RuntimeProcess(root, port=server.port) as third, third.client() as c:
        assert data(c.get("/api/agent/runtime/status"))["paused_reason"] is None
