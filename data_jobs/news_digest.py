"""CN news digest: market flash news + news of the pool's stocks -> `news.digest.v1` live file.

Pure core: `build_digest(market_df, news_by_symbol, ...)`. Titles are untrusted text that ends up
in LLM prompts, so they are stripped of control characters, collapsed to one line and capped.
Headlines are de-duplicated on the title; market news comes first, newest first, then each symbol's
newest items. `latest_ts_ms` is the newest publish time (never later than the run), so the
freshness check measures how old the news is, not when the job last ran.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from runtime_api.settings import Settings
from data_jobs import jobrun
from data_jobs.universe import cn_symbols, code_of, normalize_cn_symbols

JOB = "news_digest"
SCHEMA_VERSION = "news.digest.v1"
DEFAULT_LIMIT_MARKET = 10
DEFAULT_LIMIT_PER_SYMBOL = 3
DEFAULT_LIMIT_TOTAL = 30
DEFAULT_MAX_SYMBOLS = 20

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")


def clean_text(value: Any, max_len: int) -> str:
    """One line of printable text, at most `max_len` characters."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = _SPACES.sub(" ", _CONTROL.sub(" ", str(value))).strip()
    return text[:max_len]


def published_ts_ms(value: Any) -> int | None:
    """`2026-02-13 10:05:00` (Shanghai wall clock) or an aware ISO time -> epoch ms."""
    text = clean_text(value, 40)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=jobrun.SH_TZ)
    return int(parsed.timestamp() * 1000)


def _items(df: pd.DataFrame, *, title: str, summary: str | None, published: str, source: str | None, url: str, kind: str, symbol: str | None) -> list[dict[str, Any]]:
    missing = [c for c in (title, published) if c not in df.columns]
    if missing:
        raise ValueError(f"{kind} news lacks columns {missing}")
    def optional(row: pd.Series, column: str | None, max_len: int) -> str | None:
        return (clean_text(row.get(column), max_len) or None) if column else None

    out = []
    for _, row in df.iterrows():
        headline = clean_text(row[title], 200)
        if not headline:
            continue
        out.append(
            {
                "title": headline,
                "summary": optional(row, summary, 280),
                "published_at": clean_text(row[published], 40) or None,
                "published_ts_ms": published_ts_ms(row[published]),
                "source": optional(row, source, 60),
                "url": optional(row, url, 240),
                "symbol": symbol,
                "kind": kind,
            }
        )
    out.sort(key=lambda item: item["published_ts_ms"] or 0, reverse=True)
    return out


def build_digest(
    market_df: pd.DataFrame,
    news_by_symbol: Mapping[str, pd.DataFrame],
    *,
    now_ms: int,
    provider: str = "akshare",
    limit_market: int = DEFAULT_LIMIT_MARKET,
    limit_per_symbol: int = DEFAULT_LIMIT_PER_SYMBOL,
    limit_total: int = DEFAULT_LIMIT_TOTAL,
) -> dict[str, Any]:
    """The `news.digest.v1` payload; a ValueError when there is no headline at all."""
    market = _items(market_df, title="标题", summary="摘要", published="发布时间", source=None, url="链接", kind="market", symbol=None)
    groups = [(market, limit_market)]
    for symbol, df in news_by_symbol.items():
        if df is None or df.empty:
            continue
        items = _items(df, title="新闻标题", summary=None, published="发布时间", source="文章来源", url="新闻链接", kind="symbol", symbol=symbol)
        groups.append((items, limit_per_symbol))
    headlines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for items, cap in groups:
        taken = 0
        for item in items:
            if taken >= cap or len(headlines) >= limit_total:
                break
            if item["title"] in seen:
                continue
            seen.add(item["title"])
            headlines.append(item)
            taken += 1
    if not headlines:
        raise ValueError("no news headline from any source")
    published = [h["published_ts_ms"] for h in headlines if h["published_ts_ms"] is not None]
    latest = min(max(published), now_ms) if published else None
    return {
        **jobrun.payload_header(SCHEMA_VERSION, provider=provider, now_ms=now_ms, latest_ts_ms=latest),
        "source_kind": "market_plus_symbol_news" if len(groups) > 1 else "market_news",
        "symbols": sorted(news_by_symbol),
        "headline_count": len(headlines),
        "headlines": headlines,
        "titles": [h["title"] for h in headlines],
    }


def run(
    settings: Settings,
    *,
    symbols: Sequence[str] | None = None,
    max_symbols: int = DEFAULT_MAX_SYMBOLS,
    max_failed_symbols: int = 0,
    **options: Any,
) -> jobrun.JobResult:
    """Fetch market and per-symbol news, write `NEWS_DIGEST_PATH_CN`. `options`: see `jobrun.execute`."""

    def work(ctx: jobrun.JobContext) -> jobrun.Output:
        pool = (list(symbols) if symbols is not None else cn_symbols(ctx.settings))[:max_symbols]
        ctx.progress.start(1 + len(pool), "news")
        market_df = ctx.vendor.market_news()
        ctx.check_budget()
        ctx.progress.advance()
        by_symbol, failed = ctx.fetch_each(pool, lambda s: ctx.vendor.symbol_news(code_of(s)), max_failed_symbols)
        payload = build_digest(market_df, by_symbol, now_ms=ctx.now_ms, provider=ctx.vendor.provider)
        path = ctx.settings.resolve(ctx.settings.news_digest_path_cn)
        counts: dict[str, Any] = {"headlines": payload["headline_count"], "symbols": len(pool)}
        if failed:
            counts["failed_symbols"] = failed
        return jobrun.Output(path, payload, payload["latest_ts_ms"], counts)

    return jobrun.execute(JOB, settings, work, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = jobrun.build_parser(JOB, "Write the CN news digest (market flash news + the pool's stock news).")
    parser.add_argument("--symbols", default=None, help="comma list instead of the registered agents' pools ('' for market news only)")
    parser.add_argument("--max-symbols", type=int, default=DEFAULT_MAX_SYMBOLS, help="per-symbol news for at most this many symbols (default %(default)s)")
    parser.add_argument("--max-failed-symbols", type=int, default=0, help="tolerate this many failing symbols instead of aborting (default %(default)s)")

    def options(args: argparse.Namespace) -> dict[str, Any]:
        symbols = normalize_cn_symbols(args.symbols.split(",")) if args.symbols is not None else None
        return {"symbols": symbols, "max_symbols": max(0, args.max_symbols), "max_failed_symbols": max(0, args.max_failed_symbols)}

    return jobrun.cli(JOB, parser, run, argv, options)


if __name__ == "__main__":
    raise SystemExit(main())
