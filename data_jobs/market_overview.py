"""CN market overview: index and industry-board spot quotes -> `market.overview.v1` live file.

Pure core: `build_overview(index_df, sector_df, ...)`. The payload carries a ready `summary` (the
runtime uses it as the decision brief when present), the benchmark indices with their day change,
and the strongest and weakest industry boards. Spot quotes have no timestamp of their own, so
`as_of_ts_ms` and `latest_ts_ms` are the fetch time.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from runtime_api.settings import Settings
from data_jobs import jobrun

JOB = "market_overview"
SCHEMA_VERSION = "market.overview.v1"
# 上证指数, 深证成指, 创业板指, 沪深300, 中证500
DEFAULT_BENCHMARKS = ("000001", "399001", "399006", "000300", "000905")
DEFAULT_SECTOR_LIMIT = 8


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _int_or_none(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def benchmark_rows(index_df: pd.DataFrame, codes: Sequence[str] = DEFAULT_BENCHMARKS) -> list[dict[str, Any]]:
    """The requested indices, in the requested order; `change_pct` is in percent, `ret_day` a fraction."""
    _require(index_df, ("代码", "名称", "最新价", "涨跌幅"), "index spot")
    by_code = {_text(row["代码"]).zfill(6): row for _, row in index_df.iterrows()}
    out = []
    for code in codes:
        row = by_code.get(code)
        if row is None:
            continue
        change = _num(row["涨跌幅"])
        out.append(
            {
                "symbol": code,
                "name": _text(row["名称"]),
                "last": _num(row["最新价"]),
                "change_pct": change,
                "ret_day": None if change is None else round(change / 100, 6),
            }
        )
    return out


def sector_rows(sector_df: pd.DataFrame) -> list[dict[str, Any]]:
    """Every industry board with a change, strongest first."""
    _require(sector_df, ("板块名称", "涨跌幅"), "sector spot")
    rows = []
    for _, row in sector_df.iterrows():
        name, change = _text(row["板块名称"]), _num(row["涨跌幅"])
        if not name or change is None:
            continue
        rows.append(
            {
                "name": name,
                "code": _text(row.get("板块代码")) or None,
                "change_pct": change,
                "ret_day": round(change / 100, 6),
                "advancers": _int_or_none(row.get("上涨家数")),
                "decliners": _int_or_none(row.get("下跌家数")),
                "leader": _text(row.get("领涨股票")) or None,
                "leader_change_pct": _num(row.get("领涨股票-涨跌幅")),
            }
        )
    rows.sort(key=lambda r: r["change_pct"], reverse=True)
    return rows


def overview_summary(benchmarks: list[dict[str, Any]], leaders: list[dict[str, Any]], laggards: list[dict[str, Any]]) -> str:
    parts = ["，".join(f"{b['name']} {_pct(b['change_pct'])}" for b in benchmarks)]
    if leaders:
        parts.append("领涨行业：" + "、".join(f"{s['name']} {_pct(s['change_pct'])}" for s in leaders[:3]))
    if laggards:
        parts.append("领跌行业：" + "、".join(f"{s['name']} {_pct(s['change_pct'])}" for s in laggards[:3]))
    return "；".join(p for p in parts if p)


def build_overview(
    index_df: pd.DataFrame,
    sector_df: pd.DataFrame,
    *,
    now_ms: int,
    provider: str = "akshare",
    benchmarks: Sequence[str] = DEFAULT_BENCHMARKS,
    sector_limit: int = DEFAULT_SECTOR_LIMIT,
) -> dict[str, Any]:
    """The `market.overview.v1` payload; a ValueError when no benchmark index is found."""
    bench = benchmark_rows(index_df, benchmarks)
    if not bench:
        raise ValueError("index spot has none of the benchmark indices")
    sectors = sector_rows(sector_df)
    leaders = [s for s in sectors if s["change_pct"] > 0][:sector_limit]
    laggards = [s for s in reversed(sectors) if s["change_pct"] < 0][:sector_limit]
    return {
        **jobrun.payload_header(SCHEMA_VERSION, provider=provider, now_ms=now_ms, latest_ts_ms=now_ms),
        "summary": overview_summary(bench, leaders, laggards),
        "benchmarks": bench,
        "sectors": leaders,
        "laggards": laggards,
    }


def run(settings: Settings, *, sector_limit: int = DEFAULT_SECTOR_LIMIT, **options: Any) -> jobrun.JobResult:
    """Fetch index and sector spot, write `MARKET_OVERVIEW_PATH_CN`. `options`: see `jobrun.execute`."""

    def work(ctx: jobrun.JobContext) -> jobrun.Output:
        ctx.progress.start(2, "overview")
        index_df = ctx.vendor.index_spot()
        ctx.check_budget()
        ctx.progress.advance()
        sector_df = ctx.vendor.sector_spot()
        ctx.check_budget()
        ctx.progress.advance()
        payload = build_overview(index_df, sector_df, now_ms=ctx.now_ms, provider=ctx.vendor.provider, sector_limit=sector_limit)
        path = ctx.settings.resolve(ctx.settings.market_overview_path_cn)
        counts = {"benchmarks": len(payload["benchmarks"]), "sectors": len(payload["sectors"]) + len(payload["laggards"])}
        return jobrun.Output(path, payload, payload["latest_ts_ms"], counts)

    return jobrun.execute(JOB, settings, work, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = jobrun.build_parser(JOB, "Write the CN market overview (indices and industry boards).")
    parser.add_argument("--sector-limit", type=int, default=DEFAULT_SECTOR_LIMIT, help="leading and lagging boards kept (default %(default)s)")

    def options(args: argparse.Namespace) -> dict[str, Any]:
        return {"sector_limit": max(1, args.sector_limit)}

    return jobrun.cli(JOB, parser, run, argv, options)


if __name__ == "__main__":
    raise SystemExit(main())
