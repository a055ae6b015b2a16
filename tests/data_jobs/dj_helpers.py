"""Constants and helpers shared by the data-job tests (imported as `dj_helpers`)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "akshare"
SH = ZoneInfo("Asia/Shanghai")
T001_POOL = ["002050.SZ", "002131.SZ", "002195.SZ", "002342.SZ", "300058.SZ", "300059.SZ", "600089.SH", "600519.SH", "600986.SH", "601899.SH"]


def sh_ms(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    """Shanghai wall-clock time as epoch ms."""
    return int(datetime(y, m, d, hh, mm, ss, tzinfo=SH).timestamp() * 1000)


FRI_AFTER_CLOSE = sh_ms(2026, 2, 13, 15, 3)  # a trading day, 3 min after the close (inside the grace)
FRI_MORNING = sh_ms(2026, 2, 13, 10, 0, 30)
SATURDAY = sh_ms(2026, 2, 14, 10, 0)
SPRING_FESTIVAL = sh_ms(2026, 2, 17, 10, 0)  # a weekday the exchange is closed
FRI_LUNCH = sh_ms(2026, 2, 13, 12, 0)
FRI_EVENING = sh_ms(2026, 2, 13, 20, 0)


def run_job_cli(module: str, *args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, dict, float]:
    """Run `python -m data_jobs.<module> args...`; (exit code, the JSON summary line, seconds taken)."""
    started = datetime.now().timestamp()
    proc = subprocess.run(
        [sys.executable, "-m", f"data_jobs.{module}", *args],
        env=env,
        cwd=env["ONLYTRADE_ROOT"],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    elapsed = datetime.now().timestamp() - started
    lines = [line for line in proc.stdout.decode().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one summary line, got stdout={proc.stdout!r} stderr={proc.stderr!r}"
    return proc.returncode, orjson.loads(lines[0]), elapsed
