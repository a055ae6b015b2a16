"""LLM exchanges are recorded per agent and day; REPLAY_LLM=recorded re-runs a replayed day identically, offline."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import orjson
import pytest

from decision.fake_openai import FakeOpenAI
from runtime_api.recording.llm_log import LlmExchangeLog
from runtime_api.settings import Settings, SettingsError

REPO = Path(__file__).resolve().parents[2]
AGENTS = ("demo_momentum", "demo_reversion")
SECRET = "sk-recording-secret-0123456789"
STEPS = 8
# a different answer on each bar, so a re-run that got any answer wrong (or fell back to the rules) diverges
ANSWERS = [
    {"action": "buy", "symbol": "600519.SH", "confidence": 0.81, "quantity_shares": 100, "reasoning": "breakout on volume"},
    {"action": "hold", "symbol": "600036.SH", "confidence": 0.6, "quantity_shares": 0, "reasoning": "wait for the close"},
    {"action": "buy", "symbol": "601318.SH", "confidence": 0.74, "quantity_shares": 300, "reasoning": "pullback to support"},
    {"action": "sell", "symbol": "600519.SH", "confidence": 0.7, "quantity_shares": 100, "reasoning": "take profit"},
]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def fresh_root(path: Path) -> Path:
    shutil.copytree(REPO / "agents", path / "agents")
    shutil.copytree(REPO / "data" / "replay", path / "data" / "replay")
    return path


async def replay_day(root: Path, **env: str) -> list[dict]:
    from api.conftest import data_of, make_settings, open_api

    handle, lifespan = await open_api(make_settings(root, ONLYTRADE_SEED_AGENTS=",".join(AGENTS), AGENT_STRICT_SYMBOL_LOOP="false", **env))
    cycles = []
    try:
        for _ in range(STEPS):
            step = data_of(await handle.control("/api/replay/runtime/control", {"action": "step", "bars": 7}))
            cycles.append(step["cycle"])
        status = data_of(await handle.get("/api/agent/runtime/status"))
        assert status["llm"]["failures"] == {}, status["llm"]
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)
    return cycles


WALL_CLOCK_KEYS = {"id", "timestamp", "ts", "saved_ts_ms", "latency_ms"}  # latency_ms: measured wall time
WALL_CLOCK_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def comparable(value):
    """Drop ids and wall-clock fields (and wall-clock stamps inside log lines); keep everything else."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()
                if k in ("trader_id", "agent_id") or (k not in WALL_CLOCK_KEYS and not k.endswith(("_at", "_id", "_time")))}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, str):
        return WALL_CLOCK_TEXT.sub("<wall clock>", value)
    return value


def decision_logs(root: Path) -> dict[str, list]:
    out = {}
    for agent in AGENTS:
        lines = []
        for file in sorted((root / "data" / "decisions" / agent).glob("*.jsonl")):
            lines += [orjson.loads(line) for line in file.read_bytes().splitlines() if line.strip()]
        out[agent] = comparable(lines)
    return out


def snapshots(root: Path) -> dict[str, dict]:
    return {agent: comparable(orjson.loads((root / "data" / "agent-memory" / f"{agent}.json").read_bytes())) for agent in AGENTS}


class Rotating(FakeOpenAI):
    """The fake provider, answering each request with the next of ANSWERS."""

    def _handle(self, handler, raw: bytes) -> None:
        with self._lock:
            self.decision = dict(ANSWERS[len(self.requests) % len(ANSWERS)])
        super()._handle(handler, raw)


@pytest.mark.anyio
async def test_recorded_answers_rerun_a_replayed_day_identically(tmp_path):
    first, second = fresh_root(tmp_path / "first"), fresh_root(tmp_path / "second")
    recordings = tmp_path / "first" / "data" / "llm-recordings"
    with Rotating() as fake:
        cycles_a = await replay_day(first, AGENT_LLM_ENABLED="true", OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=fake.base_url)
        calls = fake.request_count
    assert calls == STEPS * len(AGENTS)
    assert all(len(c["decisions"]) == len(AGENTS) for c in cycles_a)

    # the recording: one line per call, per agent and day, without the key
    log = LlmExchangeLog(recordings)
    days = sorted(p.stem for p in (recordings / "demo_momentum").glob("*.jsonl"))
    recorded = [r for d in days for r in log.read_day("demo_momentum", d)]
    assert len(recorded) == STEPS and all(r["outcome"] == "ok" and r["response"]["status"] == 200 for r in recorded)
    assert all(r["request"]["messages"][0]["role"] == "system" and r["latency_ms"] >= 0 for r in recorded)
    assert SECRET not in "".join(p.read_text() for p in recordings.rglob("*.jsonl"))

    # the re-run: recorded answers, no key, no server
    cycles_b = await replay_day(second, AGENT_LLM_ENABLED="true", REPLAY_LLM="recorded", LLM_RECORDINGS_DIR=str(recordings),
                                OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    per_bar = lambda cycles: [comparable(sorted(c["decisions"], key=lambda d: d["trader_id"])) for c in cycles]
    assert per_bar(cycles_b) == per_bar(cycles_a)
    logs_a, logs_b = decision_logs(first), decision_logs(second)
    assert all(r["decision_source"] == "llm.openai" for agent in AGENTS for r in logs_b[agent])
    assert logs_a == logs_b
    assert snapshots(first) == snapshots(second)
    actions = {d["action"] for agent in AGENTS for r in logs_b[agent] for d in r["decisions"]}
    assert {"buy", "hold"} <= actions  # the answers mattered: the day traded on them


@pytest.mark.anyio
async def test_a_missing_recording_is_a_visible_llm_failure_not_a_provider_call(tmp_path):
    from api.conftest import data_of, make_settings, open_api

    root = fresh_root(tmp_path / "root")
    handle, lifespan = await open_api(make_settings(root, ONLYTRADE_SEED_AGENTS="demo_momentum", AGENT_LLM_ENABLED="true",
                                                    REPLAY_LLM="recorded", OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    try:
        step = data_of(await handle.control("/api/replay/runtime/control", {"action": "step", "bars": 1}))
        assert step["cycle"]["decisions"][0]["trader_id"] == "demo_momentum"
        status = data_of(await handle.get("/api/agent/runtime/status"))
        assert status["llm"]["failures"] == {"recorded_answer_missing": 1} and status["llm"]["replay_llm"] == "recorded"
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


def test_recorded_mode_is_refused_live_and_retention_prunes_old_days(tmp_path):
    with pytest.raises(SettingsError, match="REPLAY_LLM"):
        Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path), "RUNTIME_DATA_MODE": "live_file", "REPLAY_LLM": "recorded"}, env_files=False)
    log = LlmExchangeLog(tmp_path / "rec", retention_days=7)
    for day in ("2026-02-10", "2026-02-13"):
        log.append({"agent_id": "t_001", "day": day, "bar_ts_ms": 1, "outcome": "ok", "response": {"status": 200, "body": "{}"}})
    old = tmp_path / "rec" / "t_001" / "2026-02-10.jsonl"
    os.utime(old, (time.time() - 8 * 86_400,) * 2)
    assert log.prune() == [old] and (tmp_path / "rec" / "t_001" / "2026-02-13.jsonl").exists()
    assert log.answer("t_001", "2026-02-13", 1)["outcome"] == "ok" and log.answer("t_001", "2026-02-13", 2) is None
    # a live exchange at 10:00:20 answers the replayed bar ending 10:00:00 (the newest bar it saw)
    bar_end = 1_770_948_000_000
    log.append({"agent_id": "t_001", "day": "2026-02-13", "bar_ts_ms": bar_end + 20_000, "outcome": "ok", "response": {"status": 200, "body": "{}"}})
    assert log.answer("t_001", "2026-02-13", bar_end)["bar_ts_ms"] == bar_end + 20_000
