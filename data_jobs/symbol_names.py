"""CN short names: every A-share's 名称 from the spot list -> `market.symbol_names.v1` live file.

`/api/symbols` (and the decision prompts) show a stock's Chinese short name, as the Node runtime
did from a hard-coded table; in live mode the names come from this file (`LIVE_SYMBOL_NAMES_PATH_CN`),
so a new pool symbol gets its name without a code change. Names change rarely (renames, ST
labels): a daily run before the open is enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from runtime_api.settings import Settings
from data_jobs import jobrun

JOB = "symbol_names"
SCHEMA_VERSION = "market.symbol_names.v1"


def symbol_of_code(code: str) -> str | None:
    """`600519` -> `600519.SH`, `000858` -> `000858.SZ`; None for anything that is not a 6-digit A-share code."""
    code = code.strip()
    if len(code) != 6 or not code.isdigit():
        return None
    if code[0] == "6":
        return f"{code}.SH"
    if code[0] in "03":
        return f"{code}.SZ"
    return None  # Beijing (4/8/9) and B-share codes: not traded by the show


def build_names(spot_df: pd.DataFrame, *, now_ms: int, provider: str = "akshare") -> dict[str, Any]:
    """The `market.symbol_names.v1` payload; a ValueError when the spot list has no usable row."""
    missing = [c for c in ("代码", "名称") if c not in spot_df.columns]
    if missing:
        raise ValueError(f"a-share spot lacks columns {missing}")
    names: dict[str, str] = {}
    for code, name in zip(spot_df["代码"], spot_df["名称"]):
        symbol = symbol_of_code(str(code).zfill(6))
        text = "" if name is None or (isinstance(name, float) and pd.isna(name)) else str(name).strip()
        if symbol and text:
            names[symbol] = text
    if not names:
        raise ValueError("a-share spot has no code/name rows")
    return {
        **jobrun.payload_header(SCHEMA_VERSION, provider=provider, now_ms=now_ms, latest_ts_ms=now_ms),
        "names": dict(sorted(names.items())),
    }


def run(settings: Settings, **options: Any) -> jobrun.JobResult:
    """Fetch the A-share spot list, write `LIVE_SYMBOL_NAMES_PATH_CN`. `options`: see `jobrun.execute`."""

    def work(ctx: jobrun.JobContext) -> jobrun.Output:
        ctx.progress.start(1, "names")
        spot = ctx.vendor.a_share_spot()
        ctx.check_budget()
        ctx.progress.advance()
        payload = build_names(spot, now_ms=ctx.now_ms, provider=ctx.vendor.provider)
        path = ctx.settings.resolve(ctx.settings.live_symbol_names_path_cn)
        return jobrun.Output(path, payload, payload["latest_ts_ms"], {"names": len(payload["names"])})

    return jobrun.execute(JOB, settings, work, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = jobrun.build_parser(JOB, "Write the CN stock short names (for /api/symbols).")
    return jobrun.cli(JOB, parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
