"""`onlytrade-ops rehearse` as an operator runs it: the seven go-live steps pass offline, and a broken
condition fails the rehearsal at the step that checks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

OPS = shutil.which("onlytrade-ops", path=str(Path(sys.executable).parent)) or shutil.which("onlytrade-ops")


def rehearse(*args: str, timeout: float) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONLYTRADE_", "CONTROL_API", "OPENAI_", "KILL_SWITCH"))}
    proc = subprocess.run([OPS, "--json", "rehearse", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, orjson.loads(proc.stdout), proc.stderr


@pytest.mark.timeout(360)
def test_rehearsal_passes_all_seven_steps():
    code, report, progress = rehearse(timeout=330)
    assert code == 0, progress
    assert report["ok"] is True and report["failed_step"] is None
    assert [s["level"] for s in report["steps"]] == ["PASS"] * 7, progress
    # step 6 restarted it once and the supervisor brought it back once after a SIGKILL
    assert report["runtime_starts"] == 3 and report["runtime_unexpected_exits"] == [-9]
    jobs = {r["job"] for r in report["job_runs"] if r["status"] == "ok"}
    assert {"frames_collector", "market_overview", "breadth", "news_digest"} <= jobs
    evidence = "\n".join(line for s in report["steps"] for line in s["evidence"])
    assert "clock WARN" in evidence and "session_gate OK" in evidence and "changed t_002.json" in evidence
    assert "step 7 One live decision cycle under the session gate: PASS" in progress


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("breakage", "step", "named"), [
    ("stale-job", 1, "freshness (cn_a_frames_stale)"),
    ("missing-token", 1, "control_token (control_token_not_configured)"),
    ("kill-switch", 1, "kill_switch (sources: file)"),
])
def test_rehearsal_fails_naming_the_broken_step(breakage, step, named):
    code, report, progress = rehearse("--break", breakage, timeout=170)
    assert code == 1, progress
    assert report["ok"] is False and report["failed_step"] == step and report["breakage"] == breakage
    failed = report["steps"][step - 1]
    assert failed["level"] == "FAIL" and any(named in line for line in failed["evidence"]), failed
    assert all(s["level"] == "SKIP" for s in report["steps"][step:])
    assert f"rehearsal: FAIL at step {step}" in progress
