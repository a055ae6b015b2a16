"""Data-job commands: the job runs in the CLI's process, prints its summary and its exit code passes through."""

from __future__ import annotations

import orjson
from ops_helpers import REPO, ops, ops_all

from ops.jobs import JOB_COMMANDS

RECORDED = {"ONLYTRADE_DATA_VENDOR": f"recorded:{REPO / 'tests' / 'data_jobs' / 'fixtures' / 'akshare'}"}


def test_job_commands_pass_options_and_exit_codes_through(tmp_path):
    # Before the collector runs, not beside it (in parallel it could see the file just written).
    missing = ops("akshare-status", root=tmp_path, env=RECORDED)
    frames, skipped = ops_all([
        ("akshare-run-once", "--symbols", "600519.SH", "--now", "2026-02-13T10:00:30"),  # --now passes through
        ("market-overview-cn-if-open", "--now", "2026-02-14T10:00:00"),  # a Saturday
    ], root=tmp_path, env=RECORDED)

    assert missing.code == 1 and "file_not_found" in missing.out, missing

    assert frames.code == 0, frames
    summary = orjson.loads(frames.out.splitlines()[-1])
    assert summary["job"] == "frames_collector" and summary["status"] == "ok" and summary["symbols"] == 1

    assert skipped.code == 0, skipped
    assert orjson.loads(skipped.out)["reason"] == "market_closed"

    status = ops("--json", "akshare-status", root=tmp_path, env=RECORDED)
    assert status.code == 0, status
    assert status.json()["frame_count"] > 0 and status.json()["file"] == "data/live/onlytrade/frames.1m.json"


def test_job_command_names_map_to_the_jobs():
    assert {name: module for name, (module, _) in JOB_COMMANDS.items()} == {
        "akshare-run-once": "frames_collector",
        "market-overview-cn-run-once": "market_overview", "market-overview-cn-if-open": "market_overview",
        "red-blue-cn-run-once": "breadth", "red-blue-cn-if-open": "breadth",
        "news-digest-cn-run-once": "news_digest", "daily-history-cn-run-once": "daily_history",
    }
    assert [name for name, (_, fixed) in JOB_COMMANDS.items() if fixed == ("--if-open",)] == [
        "market-overview-cn-if-open", "red-blue-cn-if-open"]
