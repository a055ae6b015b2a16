"""CN 1m frames: AKShare minute bars of the registered agents' pools -> `market.frames.v1` live file.

Pure core: `to_frames` (vendor DataFrames -> canonical `market.bar.v1` bars) and `merge_frames`
(existing file + new bars -> bounded, de-duplicated, sorted). `run` fetches, merges with the current
canonical file and writes it atomically to `LIVE_FRAMES_PATH_CN`.

Source conventions (`stock_zh_a_hist_min_em(period="1")`, EastMoney "trends2"):
* `时间` is the bar's **end** on the Shanghai wall clock (the 11:30 row covers 11:29-11:30; the 09:30
  row is the opening call auction). The window is [时间 - 1 min, 时间). The Node converter used 时间 as
  the start, which shifted every bar a minute late.
* `成交量` is in **lots** (手, 100 shares); `volume_shares` is lots x 100. `成交额` is CNY.
* `均价` is the running day average, not the bar's; `vwap` is computed as 成交额 / volume_shares (the
  close when nothing traded).
* A bar whose end is after `now_ms` is still forming: `session.is_partial` is true, and the next run
  replaces it (new bars win on the (symbol, start) key).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from runtime_api.market.freshness import display_path, frames_latest_ts_ms
from runtime_api.market.calendar import CN, bar_phase, is_trading_day, trading_day_of
from runtime_api.settings import Settings
from runtime_api.state.storage import CorruptFileError, read_json
from runtime_api.recording.jobs import archive_intraday
from data_jobs import jobrun
from data_jobs.universe import cn_symbols, code_of, normalize_cn_symbols

JOB = "frames_collector"
MAX_FRAMES = 20_000
BAR_MS = 60_000
SHARES_PER_LOT = 100
SOURCE_VOLUME_UNIT = "lots"  # what stock_zh_a_hist_min_em's 成交量 counts
SCHEMA_VERSION = "market.frames.v1"
BAR_SCHEMA_VERSION = "market.bar.v1"

_EXCHANGES = {"SH": "SSE", "SZ": "SZSE"}
_NEEDED = ("时间", "开盘", "收盘", "最高", "最低", "成交量", "成交额")


def exchange_of(symbol: str) -> str:
    """`.SH` -> SSE, `.SZ` -> SZSE, anything else -> OTHER."""
    return _EXCHANGES.get(symbol.rsplit(".", 1)[-1].upper(), "OTHER") if "." in symbol else "OTHER"


def last_trading_day(now_ms: int) -> str:
    """Today in Shanghai when it is a trading day, else the most recent trading day before it."""
    day = pd.Timestamp(trading_day_of(now_ms, CN))
    for _ in range(31):
        if is_trading_day(day.date(), CN):
            break
        day -= pd.Timedelta(days=1)
    return day.date().isoformat()


def _symbol_rows(symbol: str, df: pd.DataFrame, volume_unit: str) -> pd.DataFrame:
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise ValueError(f"{symbol}: minute bars lack columns {missing}")
    end = pd.to_datetime(df["时间"].astype(str), errors="coerce").dt.tz_localize("Asia/Shanghai")
    volume = pd.to_numeric(df["成交量"], errors="coerce").fillna(0.0).clip(lower=0)
    out = pd.DataFrame(
        {
            "symbol": symbol,
            "open": pd.to_numeric(df["开盘"], errors="coerce"),
            "high": pd.to_numeric(df["最高"], errors="coerce"),
            "low": pd.to_numeric(df["最低"], errors="coerce"),
            "close": pd.to_numeric(df["收盘"], errors="coerce"),
            "volume_shares": (volume * SHARES_PER_LOT if volume_unit == "lots" else volume).round(2),
            "turnover_cny": pd.to_numeric(df["成交额"], errors="coerce").fillna(0.0).clip(lower=0),
        }
    )
    valid = end.notna() & out[["open", "high", "low", "close"]].notna().all(axis=1)
    out = out[valid].copy()
    out["end_ts_ms"] = end[valid].dt.as_unit("ms").astype("int64")
    out["trading_day"] = end[valid].dt.strftime("%Y-%m-%d")
    return out


def to_frames(
    df_by_symbol: Mapping[str, pd.DataFrame],
    *,
    trading_day: str | None,
    now_ms: int,
    provider: str = "akshare",
    volume_unit: str = SOURCE_VOLUME_UNIT,
    max_frames: int = MAX_FRAMES,
) -> list[dict[str, Any]]:
    """Vendor 1m bars by symbol (`600519.SH`) -> canonical `market.bar.v1` frames.

    Only bars of `trading_day` are kept (None keeps every day the vendor returned). Bars are
    de-duplicated on (symbol, start) with the last row winning, sorted by (start, symbol), and the
    newest `max_frames` kept. `volume_unit` is "lots" (x100) or "shares".
    """
    if volume_unit not in ("lots", "shares"):
        raise ValueError(f"volume_unit must be 'lots' or 'shares', got {volume_unit!r}")
    parts = [_symbol_rows(sym, df, volume_unit) for sym, df in df_by_symbol.items() if df is not None and len(df)]
    if not parts:
        return []
    rows = pd.concat(parts, ignore_index=True)
    rows["start_ts_ms"] = rows["end_ts_ms"] - BAR_MS
    if trading_day is not None:
        rows = rows[rows["trading_day"] == trading_day]
    rows = rows.drop_duplicates(subset=["symbol", "start_ts_ms"], keep="last")
    rows = rows.sort_values(["start_ts_ms", "symbol"], kind="stable").tail(max_frames)
    phases = {int(start): bar_phase(int(start), CN) for start in rows["start_ts_ms"].unique()}
    return [_bar(row, seq, now_ms, provider, phases) for seq, row in enumerate(rows.itertuples(index=False), start=1)]


def _bar(row: Any, seq: int, now_ms: int, provider: str, phases: Mapping[int, str]) -> dict[str, Any]:
    start, end = int(row.start_ts_ms), int(row.end_ts_ms)
    volume = float(row.volume_shares)
    turnover = float(row.turnover_cny)
    close = float(row.close)
    vwap = round(turnover / volume, 4) if volume > 0 else close
    return {
        "schema_version": BAR_SCHEMA_VERSION,
        "market": "CN-A",
        "mode": "real",
        "provider": provider,
        "feed": "bars",
        "seq": seq,
        "event_ts_ms": end,
        "ingest_ts_ms": int(now_ms),
        "instrument": {
            "symbol": row.symbol,
            "exchange": exchange_of(row.symbol),
            "timezone": "Asia/Shanghai",
            "currency": "CNY",
        },
        "interval": "1m",
        "window": {"start_ts_ms": start, "end_ts_ms": end, "trading_day": row.trading_day},
        "session": {"phase": phases[start], "is_halt": False, "is_partial": end > now_ms},
        "bar": {
            "open": float(row.open),
            "high": float(row.high),
            "low": float(row.low),
            "close": close,
            "volume_shares": int(volume) if volume.is_integer() else volume,
            "turnover_cny": turnover,
            "vwap": vwap,
        },
    }


def _key(frame: Any) -> tuple[str, str, int] | None:
    if not isinstance(frame, dict):
        return None
    instrument, window = frame.get("instrument"), frame.get("window")
    if not isinstance(instrument, dict) or not isinstance(window, dict):
        return None
    symbol, start = instrument.get("symbol"), window.get("start_ts_ms")
    if not isinstance(symbol, str) or not symbol or not isinstance(start, int) or isinstance(start, bool):
        return None
    return symbol, str(frame.get("interval") or ""), start


def merge_frames(
    existing: Sequence[Any], new: Sequence[dict[str, Any]], *, max_frames: int = MAX_FRAMES
) -> list[dict[str, Any]]:
    """Existing canonical frames + new ones: new win on (symbol, interval, start); malformed existing
    frames are dropped; sorted by (start, symbol); the newest `max_frames` kept; seq renumbered 1..n."""
    by_key: dict[tuple[str, str, int], dict[str, Any]] = {}
    for frame in (*existing, *new):
        key = _key(frame)
        if key is not None:
            by_key[key] = frame
    ordered = sorted(by_key.items(), key=lambda item: (item[0][2], item[0][0], item[0][1]))
    merged = [frame for _, frame in ordered[-max_frames:]] if max_frames > 0 else []
    return [frame if frame.get("seq") == i else {**frame, "seq": i} for i, frame in enumerate(merged, start=1)]


def frames_payload(frames: list[dict[str, Any]], *, provider: str, now_ms: int) -> dict[str, Any]:
    """The canonical file: market.frames.v1 plus `generated_at` and `latest_ts_ms` (newest bar end)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "market": "CN-A",
        "mode": "real",
        "provider": provider,
        "generated_at": jobrun.iso_ms(now_ms),
        "latest_ts_ms": frames_latest_ts_ms(frames),
        "frames": frames,
    }


def read_existing_frames(path: Any) -> tuple[list[Any], bool]:
    """(frames of the current canonical file, whether it was corrupt and is being replaced)."""
    try:
        payload = read_json(path)
    except CorruptFileError:
        return [], True
    if not isinstance(payload, dict) or not isinstance(payload.get("frames"), list):
        return [], payload is not None
    return payload["frames"], False


def status(settings: Settings) -> dict[str, Any]:
    """`akshare-status`: what the canonical CN frames file holds (path shown relative to the root)."""
    path = settings.resolve(settings.live_frames_path_cn)
    out: dict[str, Any] = {
        "file": display_path(settings, path),
        "exists": path.is_file(),
        "size_bytes": None,
        "mtime_epoch": None,
        "provider": None,
        "mode": None,
        "generated_at": None,
        "frame_count": None,
        "symbol_count": None,
        "latest_ts_ms": None,
        "error": None,
    }
    if not out["exists"]:
        out["error"] = "file_not_found"
        return out
    st = path.stat()
    out.update(size_bytes=st.st_size, mtime_epoch=st.st_mtime)
    try:
        payload = read_json(path)
    except CorruptFileError:
        out["error"] = "invalid_json"
        return out
    frames = payload.get("frames") if isinstance(payload, dict) else None
    if not isinstance(frames, list):
        out["error"] = "not_market_frames"
        return out
    out.update(
        provider=payload.get("provider"),
        mode=payload.get("mode"),
        generated_at=payload.get("generated_at"),
        frame_count=len(frames),
        symbol_count=len({k[0] for k in map(_key, frames) if k is not None}),
        latest_ts_ms=frames_latest_ts_ms(frames),
    )
    return out


def run(
    settings: Settings,
    *,
    symbols: Sequence[str] | None = None,
    all_days: bool = False,
    max_failed_symbols: int = 0,
    max_frames: int = MAX_FRAMES,
    **options: Any,
) -> jobrun.JobResult:
    """Collect, merge and write the CN frames file. `options` are `jobrun.execute`'s (now_ms, vendor, if_open, ...).

    Any vendor error aborts the run with the old file intact, unless `max_failed_symbols` allows
    that many symbols to fail (their old bars are kept, the others are updated).
    """

    def work(ctx: jobrun.JobContext) -> jobrun.Output:
        pool = list(symbols) if symbols else cn_symbols(ctx.settings)
        if not pool:
            raise jobrun.Skip("no_symbols")
        day = None if all_days else last_trading_day(ctx.now_ms)
        ctx.progress.start(len(pool), "1m bars")
        by_symbol, failed = ctx.fetch_each(pool, lambda s: ctx.vendor.minute_bars(code_of(s)), max_failed_symbols)
        fresh = to_frames(by_symbol, trading_day=day, now_ms=ctx.now_ms, provider=ctx.vendor.provider, max_frames=max_frames)
        path = ctx.settings.resolve(ctx.settings.live_frames_path_cn)
        existing, corrupt = read_existing_frames(path)
        merged = merge_frames(existing, fresh, max_frames=max_frames)
        payload = frames_payload(merged, provider=ctx.vendor.provider, now_ms=ctx.now_ms)
        counts: dict[str, Any] = {
            "symbols": len(pool),
            "frames": len(merged),
            "frames_fetched": len(fresh),
            "trading_day": day,
        }
        if failed:
            counts["failed_symbols"] = sorted(failed)
        if corrupt:
            counts["replaced_corrupt_file"] = True
        return jobrun.Output(path, payload, payload["latest_ts_ms"], counts, pretty=False, after_commit=lambda: archive_intraday(
            ctx.settings, CN, fresh, now_ms=ctx.now_ms, provider=ctx.vendor.provider))

    return jobrun.execute(JOB, settings, work, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = jobrun.build_parser(JOB, "Collect CN 1m bars into the live market.frames.v1 file.")
    parser.add_argument("--symbols", default=None, help="comma list (600519.SH,000001) instead of the registered agents' pools")
    parser.add_argument("--all-days", action="store_true", help="keep every day the vendor returns (a warm-up backfill), not just the current trading day")
    parser.add_argument("--max-failed-symbols", type=int, default=0, help="tolerate this many failing symbols instead of aborting (default %(default)s)")

    def options(args: argparse.Namespace) -> dict[str, Any]:
        symbols = normalize_cn_symbols(args.symbols.split(",")) if args.symbols else None
        return {"symbols": symbols, "all_days": args.all_days, "max_failed_symbols": max(0, args.max_failed_symbols)}

    return jobrun.cli(JOB, parser, run, argv, options)


if __name__ == "__main__":
    raise SystemExit(main())
