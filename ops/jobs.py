"""Local data commands: the data jobs (run in this process), the frames file status, live freshness.

The job commands hand their arguments to `data_jobs.<job>.main(argv)`, which prints its one-line
JSON summary and returns its exit code (0, 1, 2, 75 locked, 124 budget); `onlytrade-ops` exits
with that code unchanged. See docs/runbooks/data-pipeline.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from runtime_api import clock
from runtime_api.market.freshness import exit_code, run_checks
from runtime_api.settings import Settings

from .exits import EXIT_FAILED, EXIT_OK, Outcome

# command -> (module under data_jobs, arguments the command always adds)
JOB_COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "akshare-run-once": ("frames_collector", ()),
    "market-overview-cn-run-once": ("market_overview", ()),
    "market-overview-cn-if-open": ("market_overview", ("--if-open",)),
    "red-blue-cn-run-once": ("breadth", ()),
    "red-blue-cn-if-open": ("breadth", ("--if-open",)),
    "news-digest-cn-run-once": ("news_digest", ()),
    "daily-history-cn-run-once": ("daily_history", ()),
}


def run_job(command: str, extra: Sequence[str] = ()) -> int:
    """Run a data job in-process; returns its exit code (its summary is already printed)."""
    module, fixed = JOB_COMMANDS[command]
    job = importlib.import_module(f"data_jobs.{module}")
    return int(job.main([*fixed, *extra]))


def akshare_status(settings: Settings) -> Outcome:
    """What the canonical CN frames file holds; exit 1 if it is missing or unreadable."""
    from data_jobs.frames_collector import status

    data = status(settings)
    return Outcome(data, EXIT_FAILED if data.get("error") else EXIT_OK, view="record",
                   notes=[f"frames file: {data['error']}"] if data.get("error") else [])


def live_freshness(settings: Settings, *, strict: bool = False, now_ms: int | None = None) -> Outcome:
    """How old the newest data in each live file is; with --strict exit 1 when a required file fails."""
    report = run_checks(settings, clock.now_ms() if now_ms is None else now_ms)
    failing = [r["label"] for r in report["checks"] if r["required"] and not r["ok"]]
    notes = [f"required checks failing: {', '.join(failing)}"] if failing else []
    return Outcome(report, exit_code(report, strict=strict), view="freshness", notes=notes)
