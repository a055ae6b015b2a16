"""The shipped systemd units: required keys always checked; `systemd-analyze verify` when available."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from dj_helpers import REPO

from data_jobs import jobrun

UNITS = REPO / "systemd"
VENV_BIN = "/opt/onlytrade/.venv/bin"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "User": "onlytrade",
    "WorkingDirectory": "/opt/onlytrade",
    "EnvironmentFile": "/etc/onlytrade/runtime.env",
}
# job unit name -> (module, gated by --if-open, timer cadence)
JOBS = {
    "frames": ("frames_collector", True, "minute"),
    "overview": ("market_overview", True, "minute"),
    "breadth": ("breadth", True, "minute"),
    "news": ("news_digest", False, "15min"),
    "daily": ("daily_history", False, "open_and_close"),
    "names": ("symbol_names", False, "before_open"),
}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: repeated keys accumulate, `#`/`;` comment lines, no interpolation."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}: stray line {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values, f"[{section}] {key}= missing"
    return values[-1]


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    path = UNITS / name
    assert path.exists(), f"systemd/{name} is missing"
    return parse_unit(path)


def test_every_unit_parses_and_has_a_description():
    files = sorted(p.name for p in UNITS.iterdir())
    assert files and all(re.match(r"^onlytrade-[a-z-]+\.(service|timer)$", f) for f in files), files
    for name in files:
        assert one(unit(name), "Unit", "Description")


def test_runtime_service_has_the_required_keys():
    runtime = unit("onlytrade-runtime.service")
    assert one(runtime, "Service", "ExecStart") == f"{VENV_BIN}/onlytrade-runtime"
    expected = {
        **HARDENING,
        "Restart": "always",
        "TimeoutStopSec": "30",
        "KillSignal": "SIGTERM",
        "ReadWritePaths": "/opt/onlytrade/data",
    }
    for key, value in expected.items():
        assert one(runtime, "Service", key) == value, key
    assert one(runtime, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("job", sorted(JOBS))
def test_job_services_run_a_real_module_hardened_and_treat_locked_as_success(job):
    module, if_open, _ = JOBS[job]
    service = unit(f"onlytrade-job-{job}.service")
    exec_start = one(service, "Service", "ExecStart").split()
    assert exec_start[:3] == [f"{VENV_BIN}/python", "-m", f"data_jobs.{module}"]
    assert (REPO / "data_jobs" / f"{module}.py").exists()
    assert ("--if-open" in exec_start) is if_open
    assert one(service, "Service", "Type") == "oneshot"
    assert str(jobrun.EXIT_LOCKED) in one(service, "Service", "SuccessExitStatus").split()
    for key, value in {**HARDENING, "ReadWritePaths": "/opt/onlytrade/data"}.items():
        assert one(service, "Service", key) == value, key
    budget = float(exec_start[exec_start.index("--budget-s") + 1])
    assert budget < float(one(service, "Service", "TimeoutStartSec")), "systemd must not kill a job before its own budget"


@pytest.mark.parametrize("job", sorted(JOBS))
def test_job_timers_fire_on_the_documented_cadence(job):
    _, _, cadence = JOBS[job]
    timer = unit(f"onlytrade-job-{job}.timer")
    calendar = one(timer, "Timer", "OnCalendar")
    if cadence == "open_and_close":
        assert timer["Timer"]["OnCalendar"] == ["Mon..Fri *-*-* 08:45:00 Asia/Shanghai", "Mon..Fri *-*-* 15:20:00 Asia/Shanghai"]
        assert one(timer, "Timer", "Persistent") == "true"  # a host booted at 09:00 still runs the 08:45 fetch
    elif cadence == "minute":
        assert calendar == "Mon..Fri *-*-* 09..15:*:05 Asia/Shanghai"
        assert one(timer, "Timer", "AccuracySec") == "1s"  # the default (1 min) would smear the cadence
    elif cadence == "before_open":
        assert calendar == "Mon..Fri *-*-* 08:50:00 Asia/Shanghai"
    else:
        assert calendar == "*-*-* *:00/15:30"
    assert one(timer, "Install", "WantedBy") == "timers.target"


def test_health_probe_restarts_the_runtime_when_the_probe_fails():
    probe = unit("onlytrade-health-probe.service")
    assert one(probe, "Service", "ExecStart") == f"{VENV_BIN}/onlytrade-ops health-restart-probe"
    restart_unit = one(probe, "Unit", "OnFailure")
    restart = unit(restart_unit)
    assert one(restart, "Service", "ExecStart").endswith("try-restart onlytrade-runtime.service")
    timer = unit("onlytrade-health-probe.timer")
    assert one(timer, "Timer", "OnUnitActiveSec") and one(timer, "Install", "WantedBy") == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    # verify insists that ExecStart binaries and EnvironmentFile exist: point them at stubs.
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    for name in ("python", "onlytrade-runtime", "onlytrade-ops"):
        (venv_bin / name).write_text("#!/bin/sh\n")
        (venv_bin / name).chmod(0o755)
    env_file = tmp_path / "runtime.env"
    env_file.write_text("ONLYTRADE_ROOT=/opt/onlytrade\n")
    units = tmp_path / "units"
    units.mkdir()
    for path in UNITS.iterdir():
        text = path.read_text().replace(VENV_BIN, str(venv_bin)).replace("/etc/onlytrade/runtime.env", str(env_file))
        (units / path.name).write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in units.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    diagnostics = [line for line in (proc.stdout + proc.stderr).splitlines() if "onlytrade-" in line]
    assert proc.returncode == 0 and not diagnostics, proc.stdout + proc.stderr
