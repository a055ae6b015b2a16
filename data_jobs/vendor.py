"""The market-data source the jobs read: AKShare in production, recorded responses in tests.

Both vendors return pandas DataFrames shaped exactly as the AKShare functions return them
(Chinese column names), so the jobs' pure transforms are tested on the real shapes. AKShare is
imported lazily inside `AkshareVendor`: neither the runtime nor the tests need it installed.
Any failure of a vendor call surfaces as `VendorError`; the jobs then keep their old output.

Select with `ONLYTRADE_DATA_VENDOR=akshare` (default) or `recorded:<fixtures dir>`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import pandas as pd

from runtime_api import clock

VENDOR_ENV = "ONLYTRADE_DATA_VENDOR"
# Recorded vendor only: fail every call after this many (simulates a vendor dying mid-run), and
# sleep this long in every call (simulates a hung vendor, to exercise the time budget).
RECORDED_FAIL_AFTER_ENV = "ONLYTRADE_RECORDED_FAIL_AFTER"
RECORDED_DELAY_ENV = "ONLYTRADE_RECORDED_DELAY_S"

# Columns that hold codes: read as text so "000001" keeps its zeros.
_TEXT_COLUMNS = {"代码": str, "板块代码": str, "关键词": str, "股票代码": str, "日期": str}


class VendorError(RuntimeError):
    """A vendor call failed (network, parse, missing data); `call` names the call."""

    def __init__(self, call: str, message: str):
        super().__init__(f"{call}: {message}")
        self.call = call
        self.message = message


class Vendor(Protocol):
    provider: str

    def minute_bars(self, code: str) -> pd.DataFrame:
        """1m bars of one A-share (6-digit code): 时间 (bar end, Shanghai), 开盘, 收盘, 最高, 最低,
        成交量 (lots of 100 shares), 成交额 (CNY), 均价; the last few trading days."""

    def daily_bars(self, code: str, start_date: str, end_date: str) -> pd.DataFrame:
        """Unadjusted daily bars of one A-share between YYYYMMDD dates: 日期, 股票代码, 开盘, 收盘,
        最高, 最低, 成交量 (lots), 成交额 (CNY), 振幅, 涨跌幅, 涨跌额, 换手率."""

    def index_spot(self) -> pd.DataFrame:
        """Spot quotes of the main CN indices: 代码, 名称, 最新价, 涨跌幅 (%), 涨跌额, ..."""

    def sector_spot(self) -> pd.DataFrame:
        """Spot quotes of the industry boards: 板块名称, 板块代码, 涨跌幅 (%), 上涨家数, 下跌家数, 领涨股票, ..."""

    def a_share_spot(self) -> pd.DataFrame:
        """Spot quotes of every A-share: 代码, 名称, 最新价, 涨跌幅 (%, NaN when suspended), ..."""

    def market_news(self) -> pd.DataFrame:
        """Market-wide flash news: 标题, 摘要, 发布时间 (Shanghai), 链接."""

    def symbol_news(self, code: str) -> pd.DataFrame:
        """Recent news of one A-share: 关键词, 新闻标题, 新闻内容, 发布时间, 文章来源, 新闻链接."""


class AkshareVendor:
    """The few AKShare calls the jobs use, each wrapped so any failure is a `VendorError`."""

    provider = "akshare"

    def __init__(self, module: ModuleType | Any | None = None):
        self._module = module

    def _ak(self) -> Any:
        if self._module is None:
            try:
                import akshare  # noqa: PLC0415 - optional dependency, only needed in production
            except ImportError as exc:
                raise VendorError("import", f"akshare is not installed ({exc})") from exc
            self._module = akshare
        return self._module

    def _call(self, name: str, **kwargs: Any) -> pd.DataFrame:
        func = getattr(self._ak(), name, None)
        if func is None:
            raise VendorError(name, "not provided by this akshare version")
        try:
            frame = func(**kwargs)
        except Exception as exc:  # akshare raises anything from KeyError to requests errors
            raise VendorError(name, f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(frame, pd.DataFrame):
            raise VendorError(name, f"returned {type(frame).__name__}, not a DataFrame")
        return frame

    def minute_bars(self, code: str) -> pd.DataFrame:
        return self._call("stock_zh_a_hist_min_em", symbol=code, period="1", adjust="")

    def daily_bars(self, code: str, start_date: str, end_date: str) -> pd.DataFrame:
        # adjust="" (unadjusted) so daily closes agree with the unadjusted 1-minute bars.
        return self._call("stock_zh_a_hist", symbol=code, period="daily", start_date=start_date, end_date=end_date, adjust="")

    def index_spot(self) -> pd.DataFrame:
        return self._call("stock_zh_index_spot_em", symbol="沪深重要指数")

    def sector_spot(self) -> pd.DataFrame:
        return self._call("stock_board_industry_name_em")

    def a_share_spot(self) -> pd.DataFrame:
        return self._call("stock_zh_a_spot_em")

    def market_news(self) -> pd.DataFrame:
        return self._call("stock_info_global_em")

    def symbol_news(self, code: str) -> pd.DataFrame:
        return self._call("stock_news_em", symbol=code)


class RecordedVendor:
    """Serves recorded AKShare responses (CSV files) from a fixtures folder.

    Layout: `minute_bars/<code>.csv`, `daily_bars/<code>.csv`, `symbol_news/<code>.csv`, `index_spot.csv`, `sector_spot.csv`,
    `a_share_spot.csv`, `market_news.csv`. A missing file is a `VendorError`, as is every call after
    the first `fail_after` calls (to simulate a vendor failing mid-run); `delay_s` makes every call
    that slow. With `until_ms` (a clock: the simulated one of a rehearsal), timed responses hold only
    the rows up to that time (bars by their end, news by publication), so the day grows as the clock
    runs; the spot snapshots are served as recorded.
    """

    provider = "akshare-recorded"

    def __init__(self, fixtures_dir: Path | str, *, fail_after: int | None = None, delay_s: float = 0.0,
                 until_ms: Callable[[], int] | None = None):
        self.root = Path(fixtures_dir)
        self.fail_after = fail_after
        self.delay_s = delay_s
        self.until_ms = until_ms
        self.calls: list[str] = []

    def until(self, frame: pd.DataFrame, column: str) -> pd.DataFrame:
        """Rows whose `column` (Shanghai wall-clock time) is not after the clock; all rows without one."""
        if self.until_ms is None or column not in frame.columns:
            return frame
        limit = pd.Timestamp(self.until_ms(), unit="ms", tz="UTC").tz_convert("Asia/Shanghai").tz_localize(None)
        times = pd.to_datetime(frame[column].astype(str), errors="coerce")
        return frame[times.notna() & (times <= limit)].reset_index(drop=True)

    def _load(self, call: str, relative: str) -> pd.DataFrame:
        self.calls.append(f"{call}:{relative}")
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise VendorError(call, f"recorded failure after {self.fail_after} calls")
        path = self.root / relative
        try:
            return pd.read_csv(path, dtype=_TEXT_COLUMNS)
        except FileNotFoundError:
            raise VendorError(call, f"no recorded response {relative}") from None
        except (OSError, ValueError) as exc:
            raise VendorError(call, f"unreadable recorded response {relative}: {exc}") from exc

    def minute_bars(self, code: str) -> pd.DataFrame:
        return self.until(self._load("minute_bars", f"minute_bars/{code}.csv"), "时间")

    def daily_bars(self, code: str, start_date: str, end_date: str) -> pd.DataFrame:
        """The recorded rows between the dates (the real call filters server-side)."""
        frame = self._load("daily_bars", f"daily_bars/{code}.csv")
        if "日期" in frame.columns:
            day = frame["日期"].astype(str).str.replace("-", "", regex=False)
            frame = frame[(day >= start_date) & (day <= end_date)].reset_index(drop=True)
        return frame

    def index_spot(self) -> pd.DataFrame:
        return self._load("index_spot", "index_spot.csv")

    def sector_spot(self) -> pd.DataFrame:
        return self._load("sector_spot", "sector_spot.csv")

    def a_share_spot(self) -> pd.DataFrame:
        return self._load("a_share_spot", "a_share_spot.csv")

    def market_news(self) -> pd.DataFrame:
        return self.until(self._load("market_news", "market_news.csv"), "发布时间")

    def symbol_news(self, code: str) -> pd.DataFrame:
        return self.until(self._load("symbol_news", f"symbol_news/{code}.csv"), "发布时间")


def _env_number(env: Mapping[str, str], name: str, kind: type) -> Any:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {raw!r}") from None


def vendor_from_env(environ: Mapping[str, str] | None = None) -> Vendor:
    """`ONLYTRADE_DATA_VENDOR`: `akshare` (default) or `recorded:<dir>`; anything else is a ValueError."""
    env = os.environ if environ is None else environ
    spec = (env.get(VENDOR_ENV) or "akshare").strip()
    if spec.lower() == "akshare":
        return AkshareVendor()
    if spec.lower().startswith("recorded:") and spec[len("recorded:"):].strip():
        fail_after = _env_number(env, RECORDED_FAIL_AFTER_ENV, int)
        delay_s = _env_number(env, RECORDED_DELAY_ENV, float)
        sim = clock.active()
        return RecordedVendor(Path(spec[len("recorded:"):].strip()), fail_after=fail_after, delay_s=delay_s or 0.0,
                              until_ms=sim.now_ms if sim.simulated else None)
    raise ValueError(f"{VENDOR_ENV}: expected 'akshare' or 'recorded:<dir>', got {spec!r}")
