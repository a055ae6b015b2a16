"""The names job: every A-share's short name from the recorded spot list, written where the runtime reads it."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pandas as pd
import pytest
from dj_helpers import FRI_AFTER_CLOSE, REPO

from data_jobs import jobrun, symbol_names


def test_names_cover_the_pool_with_exchange_suffixes(vendor):
    payload = symbol_names.build_names(vendor.a_share_spot(), now_ms=FRI_AFTER_CLOSE)
    names = payload["names"]
    assert (payload["schema_version"], payload["market"], payload["day_key"]) == ("market.symbol_names.v1", "CN-A", "2026-02-13")
    assert names["600519.SH"] == "贵州茅台" and names["000858.SZ"] == "五粮液" and names["688981.SH"] == "中芯国际"
    assert names["000001.SZ"] == "平安银行" and names["300750.SZ"] == "宁德时代"
    assert list(names) == sorted(names) and len(names) == 20  # suspended stocks keep their names too


def test_codes_lose_no_zeros_and_unusable_rows_are_dropped():
    spot = pd.DataFrame({"代码": [858, "600519", "830799", "200002", "000001"], "名称": ["五粮液", " 贵州茅台 ", "艾融软件", "万科B", None]})
    assert symbol_names.build_names(spot, now_ms=FRI_AFTER_CLOSE)["names"] == {"000858.SZ": "五粮液", "600519.SH": "贵州茅台"}
    with pytest.raises(ValueError):
        symbol_names.build_names(pd.DataFrame({"代码": ["600519"]}), now_ms=FRI_AFTER_CLOSE)
    with pytest.raises(ValueError):
        symbol_names.build_names(pd.DataFrame({"代码": ["830799"], "名称": ["x"]}), now_ms=FRI_AFTER_CLOSE)


def test_run_writes_the_live_names_file_and_a_vendor_failure_keeps_it(settings, vendor, tmp_path):
    result = symbol_names.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=vendor)
    path = settings.resolve(settings.live_symbol_names_path_cn)
    assert result.status == "ok" and result.summary()["names"] == 20
    written = path.read_bytes()
    assert orjson.loads(written)["names"]["601899.SH"] == "紫金矿业"

    from data_jobs.vendor import RecordedVendor

    broken = symbol_names.run(settings, now_ms=FRI_AFTER_CLOSE, vendor=RecordedVendor(tmp_path / "empty"))
    assert broken.status == "error" and path.read_bytes() == written


def test_the_job_runs_as_a_module(job_env, live_root):
    proc = subprocess.run(
        [sys.executable, "-m", "data_jobs.symbol_names", "--now", "2026-02-13T08:50:00"],
        cwd=REPO, env=job_env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == jobrun.EXIT_OK, proc.stderr
    line = orjson.loads(proc.stdout.strip().splitlines()[-1])
    assert line["job"] == "symbol_names" and line["status"] == "ok"
    payload = orjson.loads((live_root / "data/live/onlytrade/symbol_names.cn-a.json").read_bytes())
    assert payload["names"]["002131.SZ"] == "利欧股份"
