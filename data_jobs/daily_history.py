"""CN daily history: AKShare daily bars of every agent's pool -> the `market.frames.v1` file at `LIVE_DAILY_PATH_CN`.

The runtime needs `DATA_READINESS_MIN_DAILY_FRAMES` daily bars per symbol for its daily features
(SMA 60, RSI 14); without them every decision is a `daily_frames_insufficient` hold. This job runs
before the open (and once after the close) for the union of every CN manifest's pool in AGENTS_DIR
(registered or not), so a fresh host with an empty registry gets data too.

Source conventions (`stock_zh_a_hist(period="daily", adjust="")`, EastMoney):
* prices are **unadjusted**, so the daily closes agree with the unadjusted 1-minute bars the frames
  collector writes (a forward-adjusted history would put yesterday's close at another level than
  today's first minute and break the price-limit check).
* `日期` is the trading day; a bar's window is [00:00, 15:00) Shanghai: it is complete at the close.
  Today's row, which the vendor serves while the session is running, is only kept after the close.
* `成交量` is in **lots** (100 shares), `成交额` in CNY.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time as dtime, timedelta
from typing import Any

import pandas as pd

from runtime_api.market.calendar import CN, SESSIONS, timezone_of, trading_day_of
from runtime_api.settings import Settings
from runtime_api.recording.jobs import archive_daily
from data_jobs import jobrun
from data_jobs.frames_collector import BAR_SCHEMA_VERSION, SHARES_PER_LOT, exchange_of, frames_payload, merge_frames, read_existing_frames
from data_jobs.universe import all_cn_symbols, code_of, normalize_cn_symbols

JOB = "daily_history"
DEFAULT_BARS = 180  # what the decision context asks for (decision.agent_runtime.DAILY_BARS)
# Trading days are ~69% of calendar days; ask the vendor for a window that surely holds the bars.
CALENDAR_DAYS_PER_BAR = 1.6
_NEEDED = ("日期", "开盘", "收盘", "最高", "最低", "成交量", "成交额")
_CLOSE_MIN = SESSIONS[CN][-1][1]


def _window(day: date) -> tuple[int, int]:
    tz = timezone_of(CN)
    start = datetime.combine(day, dtime(0, 0), tzinfo=tz)
    end = datetime.combine(day, dtime(_CLOSE_MIN // 60, _CLOSE_MIN % 60), tzinfo=tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _symbol_rows(symbol: str, df: pd.DataFrame, now_ms: int) -> list[dict[str, Any]]:
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise ValueError(f"{symbol}: daily bars lack columns {missing}")
    days = pd.to_datetime(df["日期"].astype(str), errors="coerce")
    prices = {k: pd.to_numeric(df[c], errors="coerce") for k, c in (("open", "开盘"), ("close", "收盘"), ("high", "最高"), ("low", "最低"))}
    lots = pd.to_numeric(df["成交量"], errors="coerce").fillna(0.0).clip(lower=0)
    turnover = pd.to_numeric(df["成交额"], errors="coerce").fillna(0.0).clip(lower=0)
    rows = []
    for i in range(len(df)):
        if pd.isna(days.iloc[i]) or any(pd.isna(p.iloc[i]) or p.iloc[i] <= 0 for p in prices.values()):
            continue  # a row without a usable price is vendor noise, never a bar
        start, end = _window(days.iloc[i].date())
        if end > now_ms:
            continue  # today's bar while the session runs (or a future-dated row): not a daily bar yet
        volume = float(lots.iloc[i]) * SHARES_PER_LOT
        close = float(prices["close"].iloc[i])
        rows.append({
            "symbol": symbol,
            "start": start,
            "end": end,
            "day": days.iloc[i].date().isoformat(),
            "open": float(prices["open"].iloc[i]),
            "high": float(prices["high"].iloc[i]),
            "low": float(prices["low"].iloc[i]),
            "close": close,
            "volume": int(volume) if volume.is_integer() else volume,
            "turnover": float(turnover.iloc[i]),
        })
    return rows


def to_daily_frames(
    df_by_symbol: Mapping[str, pd.DataFrame], *, now_ms: int, provider: str = "akshare", bars: int = DEFAULT_BARS
) -> list[dict[str, Any]]:
    """Vendor daily rows by symbol -> canonical 1d `market.bar.v1` frames: complete days only, the
    newest `bars` per symbol, de-duplicated on the day (last row wins), sorted by (start, symbol)."""
    out: list[dict[str, Any]] = []
    for symbol, df in df_by_symbol.items():
        if df is None or not len(df):
            continue
        by_day = {row["day"]: row for row in _symbol_rows(symbol, df, now_ms)}
        out.extend(sorted(by_day.values(), key=lambda r: r["start"])[-bars:] if bars > 0 else [])
    out.sort(key=lambda r: (r["start"], r["symbol"]))
    return [_bar(row, seq, now_ms, provider) for seq, row in enumerate(out, start=1)]


def _bar(row: Mapping[str, Any], seq: int, now_ms: int, provider: str) -> dict[str, Any]:
    volume, turnover, close = row["volume"], row["turnover"], row["close"]
    return {
        "schema_version": BAR_SCHEMA_VERSION,
        "market": "CN-A",
        "mode": "real",
        "provider": provider,
        "feed": "bars",
        "seq": seq,
        "event_ts_ms": row["end"],
        "ingest_ts_ms": int(now_ms),
        "instrument": {"symbol": row["symbol"], "exchange": exchange_of(row["symbol"]), "timezone": "Asia/Shanghai", "currency": "CNY"},
        "interval": "1d",
        "window": {"start_ts_ms": row["start"], "end_ts_ms": row["end"], "trading_day": row["day"]},
        "session": {"phase": "closed", "is_halt": False, "is_partial": False},
        "bar": {
            "open": row["open"],
            "high": row["high"],
            "low": row["low"],
            "close": close,
            "volume_shares": volume,
            "turnover_cny": turnover,
            "vwap": round(turnover / volume, 4) if volume > 0 else close,
        },
    }


def _bounded(frames: Sequence[dict[str, Any]], bars: int) -> list[dict[str, Any]]:
    """Keep the newest `bars` daily frames per symbol (frames are sorted by start)."""
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for frame in frames:
        by_symbol.setdefault(frame["instrument"]["symbol"], []).append(frame)
    keep = {id(f) for fs in by_symbol.values() for f in fs[-bars:]}
    return [f if f.get("seq") == i else {**f, "seq": i} for i, f in enumerate((f for f in frames if id(f) in keep), start=1)]


def run(
    settings: Settings,
    *,
    symbols: Sequence[str] | None = None,
    bars: int = DEFAULT_BARS,
    max_failed_symbols: int = 0,
    **options: Any,
) -> jobrun.JobResult:
    """Fetch, merge and write the CN daily file. `options` are `jobrun.execute`'s (now_ms, vendor, ...).

    Any vendor error aborts with the old file intact, unless `max_failed_symbols` allows that many
    symbols to fail (their old bars are kept). Symbols left with fewer than
    `DATA_READINESS_MIN_DAILY_FRAMES` bars are listed in `short_symbols` (the runtime holds them).
    """
    bars = max(bars, settings.data_readiness_min_daily_frames)

    def work(ctx: jobrun.JobContext) -> jobrun.Output:
        # Every manifest's pool: a registered agent's pool comes from its manifest, so this covers them.
        pool = list(symbols) if symbols else all_cn_symbols(ctx.settings)
        if not pool:
            raise jobrun.Skip("no_symbols")
        today = date.fromisoformat(trading_day_of(ctx.now_ms, CN))
        start = (today - timedelta(days=int(bars * CALENDAR_DAYS_PER_BAR) + 10)).strftime("%Y%m%d")
        end = today.strftime("%Y%m%d")
        ctx.progress.start(len(pool), "daily bars")
        by_symbol, failed = ctx.fetch_each(pool, lambda s: ctx.vendor.daily_bars(code_of(s), start, end), max_failed_symbols)
        fresh = to_daily_frames(by_symbol, now_ms=ctx.now_ms, provider=ctx.vendor.provider, bars=bars)
        path = ctx.settings.resolve(ctx.settings.live_daily_path_cn)
        existing, corrupt = read_existing_frames(path)
        merged = _bounded(merge_frames([f for f in existing if isinstance(f, dict) and f.get("interval") == "1d"], fresh, max_frames=10**7), bars)
        payload = frames_payload(merged, provider=ctx.vendor.provider, now_ms=ctx.now_ms)
        per_symbol: dict[str, int] = {}
        for frame in merged:
            per_symbol[frame["instrument"]["symbol"]] = per_symbol.get(frame["instrument"]["symbol"], 0) + 1
        newest = max((f["window"]["trading_day"] for f in merged), default=None)
        counts: dict[str, Any] = {"symbols": len(pool), "frames": len(merged), "frames_fetched": len(fresh), "latest_trading_day": newest}
        short = sorted(s for s in pool if per_symbol.get(s, 0) < ctx.settings.data_readiness_min_daily_frames)
        if short:
            counts["short_symbols"] = short
        if failed:
            counts["failed_symbols"] = sorted(failed)
        if corrupt:
            counts["replaced_corrupt_file"] = True
        return jobrun.Output(path, payload, payload["latest_ts_ms"], counts, pretty=False, after_commit=lambda: archive_daily(
            ctx.settings, CN, merged, now_ms=ctx.now_ms, provider=ctx.vendor.provider))

    return jobrun.execute(JOB, settings, work, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = jobrun.build_parser(JOB, "Collect CN daily bars (unadjusted) into the live market.frames.v1 daily file.")
    parser.add_argument("--symbols", default=None, help="comma list (600519.SH,000001) instead of every agent's pool")
    parser.add_argument("--bars", type=int, default=DEFAULT_BARS, help="daily bars kept per symbol (at least DATA_READINESS_MIN_DAILY_FRAMES; default %(default)s)")
    parser.add_argument("--max-failed-symbols", type=int, default=0, help="tolerate this many failing symbols instead of aborting (default %(default)s)")

    def options(args: argparse.Namespace) -> dict[str, Any]:
        symbols = normalize_cn_symbols(args.symbols.split(",")) if args.symbols else None
        return {"symbols": symbols, "bars": max(1, args.bars), "max_failed_symbols": max(0, args.max_failed_symbols)}

    return jobrun.cli(JOB, parser, run, argv, options)


if __name__ == "__main__":
    raise SystemExit(main())
