"""A live market at a fixed moment: the real data jobs write the files from recorded vendor
responses, and the process clock (`time.time`) is moved to that moment, still ticking.

The session of 2026-02-13 (a Friday) at 10:30 Shanghai: the recorded 1m bars are cut at 10:30 (what
the vendor would have served then) and the daily history is the 08:50 pre-open run (ending on
2026-02-12). Tests edit the vendor responses or the written files to inject one defect each.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pandas as pd
import pytest

from data_jobs import daily_history, frames_collector
from data_jobs.vendor import RecordedVendor
from runtime_api.settings import Settings
from runtime_api.state.storage import write_json_atomic

FIXTURES = Path(__file__).resolve().parents[1] / "data_jobs" / "fixtures" / "akshare"
SH = ZoneInfo("Asia/Shanghai")
T001_POOL = ["002050.SZ", "002131.SZ", "002195.SZ", "002342.SZ", "300058.SZ", "300059.SZ", "600089.SH", "600519.SH", "600986.SH", "601899.SH"]


def sh_ms(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return int(datetime(y, m, d, hh, mm, ss, tzinfo=SH).timestamp() * 1000)


SESSION_NOW = sh_ms(2026, 2, 13, 10, 30, 20)
PRE_OPEN_RUN = sh_ms(2026, 2, 13, 8, 50)


def move_clock(monkeypatch: pytest.MonkeyPatch, now_ms: int) -> None:
    """Every `time.time()` in this process reads `now_ms` plus the real time elapsed since."""
    real = time.time
    offset = now_ms / 1000 - real()
    monkeypatch.setattr(time, "time", lambda: real() + offset)


def vendor_at(tmp: Path, cut: str = "2026-02-13 10:30:00") -> Path:
    """A copy of the recorded responses with the 1m bars cut at `cut` (Shanghai)."""
    fx = tmp / "vendor"
    shutil.copytree(FIXTURES, fx)
    for csv in (fx / "minute_bars").glob("*.csv"):
        df = pd.read_csv(csv, dtype=str)
        df[df["时间"] <= cut].to_csv(csv, index=False)
    return fx


def edit_minute_bars(fx: Path, code: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    csv = fx / "minute_bars" / f"{code}.csv"
    edit(pd.read_csv(csv, dtype={"时间": str})).to_csv(csv, index=False)


def run_jobs(root: Path, fx: Path, now_ms: int = SESSION_NOW) -> None:
    """The daily job (pre-open run) and the frames job (at `now_ms`), as production runs them."""
    settings = Settings.from_env({"ONLYTRADE_ROOT": str(root)}, env_files=False)
    daily = daily_history.run(settings, now_ms=PRE_OPEN_RUN, vendor=RecordedVendor(fx))
    frames = frames_collector.run(settings, now_ms=now_ms, vendor=RecordedVendor(fx))
    assert daily.status == frames.status == "ok", (daily.summary(), frames.summary())
    live = root / "data/live/onlytrade"
    write_json_atomic(live / "market_overview.cn-a.json", {"summary": "CSI300 +0.4%", "latest_ts_ms": now_ms})
    write_json_atomic(live / "news_digest.cn-a.json", {"headlines": [{"title": "Liquor stocks steady"}], "latest_ts_ms": now_ms})
    write_json_atomic(live / "market_breadth.cn-a.json", {"advancers": 6, "decliners": 3, "unchanged": 1, "latest_ts_ms": now_ms})


def edit_frames_file(root: Path, edit: Callable[[dict], None]) -> None:
    path = root / "data/live/onlytrade/frames.1m.json"
    payload = orjson.loads(path.read_bytes())
    edit(payload)
    write_json_atomic(path, payload)
