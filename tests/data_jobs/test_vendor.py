"""The vendor adapter: AKShare calls wrapped (without AKShare installed), recorded responses, selection by env."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pandas as pd
import pytest
from dj_helpers import FIXTURES

from data_jobs.vendor import AkshareVendor, RecordedVendor, VendorError, vendor_from_env


class FakeAkshare:
    """Stands in for the akshare module: records calls, returns DataFrames or raises."""

    def __init__(self, result=None, error: Exception | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.result = pd.DataFrame({"x": [1]}) if result is None else result
        self.error = error

    def __getattr__(self, name):
        def call(**kwargs):
            self.calls.append((name, kwargs))
            if self.error is not None:
                raise self.error
            return self.result

        return call


@pytest.mark.parametrize(
    ("method", "args", "expected"),
    [
        ("minute_bars", ("600519",), ("stock_zh_a_hist_min_em", {"symbol": "600519", "period": "1", "adjust": ""})),
        ("index_spot", (), ("stock_zh_index_spot_em", {"symbol": "沪深重要指数"})),
        ("sector_spot", (), ("stock_board_industry_name_em", {})),
        ("a_share_spot", (), ("stock_zh_a_spot_em", {})),
        ("market_news", (), ("stock_info_global_em", {})),
        ("symbol_news", ("300059",), ("stock_news_em", {"symbol": "300059"})),
    ],
)
def test_each_method_is_one_akshare_call(method, args, expected):
    fake = FakeAkshare()
    frame = getattr(AkshareVendor(fake), method)(*args)
    assert fake.calls == [expected]
    assert isinstance(frame, pd.DataFrame)


def test_any_akshare_exception_becomes_a_vendor_error():
    vendor = AkshareVendor(FakeAkshare(error=KeyError("data")))
    with pytest.raises(VendorError) as info:
        vendor.minute_bars("600519")
    assert info.value.call == "stock_zh_a_hist_min_em" and "KeyError" in info.value.message


def test_a_non_dataframe_answer_is_a_vendor_error():
    with pytest.raises(VendorError, match="not a DataFrame"):
        AkshareVendor(FakeAkshare(result=[1, 2])).a_share_spot()


def test_a_missing_function_is_a_vendor_error():
    with pytest.raises(VendorError, match="not provided"):
        AkshareVendor(SimpleNamespace()).sector_spot()


def test_akshare_is_imported_lazily_and_its_absence_is_a_vendor_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "akshare", None)  # makes `import akshare` raise ImportError
    vendor = AkshareVendor()  # constructing it needs nothing
    with pytest.raises(VendorError) as info:
        vendor.index_spot()
    assert info.value.call == "import"


def test_recorded_vendor_serves_akshare_shaped_frames_with_codes_as_text():
    vendor = RecordedVendor(FIXTURES)
    spot = vendor.a_share_spot()
    assert spot["代码"].iloc[-1] == "000980"
    assert list(vendor.index_spot().columns)[:5] == ["序号", "代码", "名称", "最新价", "涨跌幅"]
    assert vendor.calls == ["a_share_spot:a_share_spot.csv", "index_spot:index_spot.csv"]


def test_recorded_vendor_fails_after_n_calls_and_on_missing_responses():
    vendor = RecordedVendor(FIXTURES, fail_after=1)
    vendor.market_news()
    with pytest.raises(VendorError, match="recorded failure"):
        vendor.market_news()
    with pytest.raises(VendorError, match="no recorded response"):
        RecordedVendor(FIXTURES).minute_bars("999999")


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({}, AkshareVendor),
        ({"ONLYTRADE_DATA_VENDOR": "akshare"}, AkshareVendor),
        ({"ONLYTRADE_DATA_VENDOR": f"recorded:{FIXTURES}"}, RecordedVendor),
    ],
)
def test_vendor_is_selected_by_env(env, kind):
    assert isinstance(vendor_from_env(env), kind)


def test_recorded_knobs_come_from_env():
    vendor = vendor_from_env(
        {"ONLYTRADE_DATA_VENDOR": f"recorded:{FIXTURES}", "ONLYTRADE_RECORDED_FAIL_AFTER": "2", "ONLYTRADE_RECORDED_DELAY_S": "0.5"}
    )
    assert (vendor.root, vendor.fail_after, vendor.delay_s) == (FIXTURES, 2, 0.5)


@pytest.mark.parametrize(
    "env",
    [
        {"ONLYTRADE_DATA_VENDOR": "bloomberg"},
        {"ONLYTRADE_DATA_VENDOR": "recorded:"},
        {"ONLYTRADE_DATA_VENDOR": f"recorded:{FIXTURES}", "ONLYTRADE_RECORDED_FAIL_AFTER": "two"},
    ],
)
def test_bad_vendor_env_is_a_value_error(env):
    with pytest.raises(ValueError):
        vendor_from_env(env)
