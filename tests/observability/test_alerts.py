"""Webhook alerts: each kind reaches a real local receiver once per throttle window, in both body
formats; a blackholed receiver (accepts, never answers) does not slow the cycles or the loop."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from e2e.server import TOKEN, RuntimeProcess
from obs_helpers import AUTH, Blackhole, Receiver, app_client, make_settings

from runtime_api.observability.alerts import Alert, AlertSender

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_sender_throttles_per_kind_and_reports_the_suppressed_count():
    clock = [1000.0]
    with Receiver() as receiver:
        sender = AlertSender(receiver.url, fmt="json", throttle_s=60, clock=lambda: clock[0])
        sender.start()
        assert sender.notify("kill_switch.on", "on") is True
        assert sender.notify("kill_switch.on", "on again") is False  # same kind, same window
        assert sender.notify("kill_switch.on", "and again") is False
        assert sender.notify("runtime.paused", "paused") is True  # another kind is not throttled
        clock[0] += 61
        assert sender.notify("kill_switch.on", "next window") is True
        assert wait_for(lambda: len(receiver.received) == 3)
        sender.close()
    assert receiver.kinds() == ["kill_switch.on", "runtime.paused", "kill_switch.on"]
    assert receiver.received[2]["suppressed_since_last"] == 2
    assert receiver.received[0]["schema"] == "onlytrade.alert.v1" and receiver.received[0]["severity"] == "warning"
    assert sender.status()["throttled"] == 2 and sender.status()["sent"] == 3


def test_slack_format_is_a_text_message():
    body = Alert("kill_switch.on", "Kill switch ON", "critical", {"reason": "drill <!channel>", "by": None}, suppressed=1).slack()
    assert set(body) == {"text"}
    assert "<!channel>" not in body["text"] and "&lt;!channel&gt;" in body["text"]
    assert "Kill switch ON" in body["text"] and "reason=drill" in body["text"] and "by=" not in body["text"]
    assert "+1 more" in body["text"]


def test_a_full_queue_drops_instead_of_blocking():
    with Blackhole() as hole:
        sender = AlertSender(hole.url, throttle_s=0, timeout_s=5, queue_size=2)
        sender.start()
        started = time.perf_counter()
        results = [sender.notify(f"kind.{i}", "x") for i in range(50)]
        took = time.perf_counter() - started
        sender.close(timeout_s=0.1)
    assert took < 0.5  # 50 notifies against a dead webhook: no waiting
    assert results.count(True) <= 3 and sender.status()["dropped"] >= 47


def _json_receiver_env(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {"ALERT_WEBHOOK_URL": receiver.url, "ALERT_WEBHOOK_FORMAT": "json", "ALERT_THROTTLE_S": "60",
            "REPLAY_SPEED": "0.1", "AGENT_DECISION_EVERY_BARS": "240", **extra}


def test_control_actions_boot_and_shutdown_reach_the_receiver_once_per_window(root):
    with Receiver() as receiver:
        server = RuntimeProcess(root, _json_receiver_env(receiver)).start()
        try:
            assert wait_for(lambda: "runtime.boot" in receiver.kinds())
            kill = "/api/agent/runtime/kill-switch"
            for _ in range(2):  # twice within the window: each kind arrives once
                assert server.control(kill, {"action": "activate", "reason": "drill", "actor": "ops-alice"}).status_code == 200
                assert wait_for(lambda: "kill_switch.on" in receiver.kinds())
                assert server.control(kill, {"action": "deactivate", "actor": "ops-alice"}).status_code == 200
                assert wait_for(lambda: "kill_switch.off" in receiver.kinds())
                time.sleep(1.2)  # the watcher looks once a second
            for action in ("pause", "resume"):
                assert server.control("/api/agent/runtime/control", {"action": action}).status_code == 200
                time.sleep(1.2)
            assert server.control("/api/agents/demo_momentum/register").status_code == 200
            assert server.control("/api/dev/reset-agent", {"trader_id": "demo_momentum", "confirm": "demo_momentum",
                                                           "reset_memory": True}).status_code == 200
            assert server.control("/api/dev/factory-reset", {"confirm": "RESET", "dry_run": True}).status_code == 200
            assert server.control("/api/dev/factory-reset", {"confirm": "RESET"}).status_code == 200
            assert wait_for(lambda: {"runtime.paused", "runtime.resumed", "reset.agent", "reset.factory"} <= set(receiver.kinds()))
        finally:
            assert server.stop() == 0
        assert wait_for(lambda: "runtime.shutdown" in receiver.kinds())
    kinds = receiver.kinds()
    for kind in ("runtime.boot", "kill_switch.on", "kill_switch.off", "reset.factory", "reset.agent", "runtime.shutdown"):
        assert kinds.count(kind) == 1, kinds
    on = next(b for b in receiver.received if b["kind"] == "kill_switch.on")
    assert on["severity"] == "critical" and on["fields"]["reason"] == "drill" and on["fields"]["by"] == "ops-alice"
    assert TOKEN not in str(receiver.received)
    assert server.read_log().count("Gate mode=replay status=killed") >= 1


async def test_stale_and_fresh_again_breaker_and_save_failure(root, tmp_path):
    frames = tmp_path / "frames.1m.json"
    now_ms = int(time.time() * 1000)
    bar = {"symbol": "600519.SH", "interval": "1m", "window": {"start_ts_ms": now_ms - 60_000, "end_ts_ms": now_ms},
           "bar": {"open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}}
    frames.write_text('{"schema_version": "market.frames.v1", "mode": "real", "provider": "test", "frames": [%s]}'
                      % __import__("json").dumps(bar))
    with Receiver() as receiver:
        settings = make_settings(root, RUNTIME_DATA_MODE="live_file", LIVE_FRAMES_PATH_CN=str(frames), ALERT_WEBHOOK_URL=receiver.url,
                                 ALERT_WEBHOOK_FORMAT="json", ALERT_THROTTLE_S="60", AGENT_SESSION_GUARD_ENABLED="false")
        async with app_client(settings) as c:
            ctx = c.app.state.ctx
            obs = ctx.extra["observability"]
            provider = ctx.svc.live.frames["CN-A"]
            clock = [now_ms]
            provider.now_ms = lambda: clock[0]
            provider.refresh(force=True)
            obs.watcher.check()
            clock[0] += 10 * 60_000  # ten minutes later, nothing new: stale
            obs.watcher.check()
            clock[0] += 1
            frames.touch()
            provider.refresh(force=True)
            clock[0] = now_ms + 30_000  # the file is loaded again and its bar is recent: fresh
            obs.watcher.check()

            breaker = ctx.runtime.breaker_for("t_001")
            for _ in range(ctx.settings.agent_llm_breaker_failures):
                breaker.record_failure("openai_timeout")
            obs.watcher.check()
            breaker.record_success()
            obs.watcher.check()

            path = ctx.svc.memory.path_for("t_001")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()  # a directory where the snapshot goes: the atomic replace fails
            with pytest.raises(Exception):
                ctx.svc.memory.save("t_001", {"agent_id": "t_001"})
            assert wait_for(lambda: len(receiver.kinds()) >= 6)
            metrics = (await c.get("/metrics")).text
    kinds = receiver.kinds()
    assert "data.stale.frames.CN-A" in kinds and "data.fresh.frames.CN-A" in kinds
    assert kinds.index("data.stale.frames.CN-A") < kinds.index("data.fresh.frames.CN-A")
    assert "llm_breaker.open" in kinds and "llm_breaker.closed" in kinds
    opened = next(b for b in receiver.received if b["kind"] == "llm_breaker.open")
    assert opened["fields"]["agent"] == "t_001" and opened["fields"]["reason"] == "openai_timeout"
    assert "snapshot.save_failed" in kinds
    assert 'onlytrade_snapshot_save_failures_total{error="IsADirectoryError"} 1.0' in metrics


def test_a_failing_data_job_posts_its_own_alert_once_per_window(root, tmp_path):
    empty = tmp_path / "no-recordings"
    empty.mkdir()
    with Receiver() as receiver:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "PYTHONPATH": str(REPO), "ONLYTRADE_ROOT": str(root),
               "ONLYTRADE_DATA_VENDOR": f"recorded:{empty}", "ALERT_WEBHOOK_URL": receiver.url, "ALERT_WEBHOOK_FORMAT": "json"}
        codes = [subprocess.run([sys.executable, "-m", "data_jobs.market_overview"], env=env, cwd=root, capture_output=True,
                                text=True, timeout=60).returncode for _ in range(2)]
        assert wait_for(lambda: len(receiver.received) >= 1)
        time.sleep(0.3)
    assert codes == [1, 1]
    assert receiver.kinds() == ["data_job.failed"]  # the second failure is inside the window
    assert receiver.received[0]["fields"]["job"] and receiver.received[0]["service"] == "onlytrade-data-jobs"


def _step_and_measure(server: RuntimeProcess, rounds: int) -> tuple[float, float]:
    """(median step latency s, event-loop p99 lag ms) while kill/resume alerts fire every round."""
    with server.client() as c:
        for verb in ("register", "start"):
            assert c.post(f"/api/agents/demo_momentum/{verb}", headers={"x-control-token": TOKEN}).status_code == 200
        durations = []
        for _ in range(rounds):
            for action in ("activate", "deactivate"):
                c.post("/api/agent/runtime/kill-switch", json={"action": action}, headers={"x-control-token": TOKEN})
            started = time.perf_counter()
            assert c.post("/api/replay/runtime/control", json={"action": "step"}, headers={"x-control-token": TOKEN}).status_code == 200
            durations.append(time.perf_counter() - started)
            time.sleep(1.05)  # the watcher sees each kill-switch change
        loop = c.get("/api/agent/runtime/status").json()["data"]["event_loop"]
    return statistics.median(durations), loop["p99_lag_ms"]


def test_a_blackholed_webhook_does_not_delay_cycles(root, tmp_path):
    quiet = {"REPLAY_SPEED": "0.1", "AGENT_DECISION_EVERY_BARS": "240", "ALERT_THROTTLE_S": "0", "ALERT_TIMEOUT_MS": "10000"}
    with RuntimeProcess(root, quiet) as baseline:
        base_step, base_lag = _step_and_measure(baseline, 4)
    other = tmp_path / "other-root"
    import shutil

    shutil.copytree(root / "agents", other / "agents")
    shutil.copytree(root / "data" / "replay", other / "data" / "replay")
    with Blackhole() as hole:
        with RuntimeProcess(other, {**quiet, "ALERT_WEBHOOK_URL": hole.url}) as dead:
            dead_step, dead_lag = _step_and_measure(dead, 4)
            metrics = httpx.get(dead.base + "/metrics").text
            assert hole.conns, "the runtime never reached the blackholed webhook"
            stop_started = time.monotonic()
        stop_took = time.monotonic() - stop_started
    print(f"step median: baseline {base_step * 1000:.0f} ms, blackholed {dead_step * 1000:.0f} ms; "
          f"loop p99: baseline {base_lag:.1f} ms, blackholed {dead_lag:.1f} ms; shutdown {stop_took:.1f} s")
    assert 'result="sent"' not in metrics
    assert dead_step < base_step * 2 + 0.25
    assert dead_lag < base_lag + 25
    assert stop_took < 3.5 + 4  # the alert wait is capped at SHUTDOWN_WAIT_S, never a hang
