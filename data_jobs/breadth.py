"""CN red-blue breadth: whole-market spot quotes -> `market.breadth.v1` live file.

Pure core: `compute_breadth(spot_df)` counts advancers (涨跌幅 > 0, "red"), decliners (< 0, "blue")
and unchanged; suspended stocks (no 涨跌幅) are left out. The runtime reads the six fields from
`payload.breadth`. Spot quotes carry no timestamp, so `latest_ts_ms` is the fetch time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from runtime_api.recording.jobs import archive_breadth
from runtime_api.market.calendar import CN
from runtime_api.settings import Settings
from data_jobs import jobrun
from data_jobs.universe import normalize_cn_symbols

JOB = "breadth"
SCHEMA_VERSION = "market.breadth.v1"


def compute_breadth(spot_df: pd.DataFrame) -> dict[str, Any]:
    """`{advancers, decliners, unchanged, total, advancer_ratio, red_blue_ratio}`; a ValueError when no stock has a change."""
    if "涨跌幅" not in spot_df.columns:
        raise ValueError("spot quotes lack the 涨跌幅 column")
    change = pd.to_numeric(spot_df["涨跌幅"], errors="coerce").dropna()
    advancers = int((change > 0).sum())
    decliners = int((change < 0).sum())
    unchanged = int((change == 0).sum())
    total = advancers + decliners + unchanged
    if total == 0:
        raise ValueError("spot quotes have no stock with a price change")
    return {
        "advancers": advancers,
        "decliners": decliners,
        "unchanged": unchanged,
        "total": total,
        "advancer_ratio": round(advancers / total, 6),
        "red_blue_ratio": round(advancers / decliners, 6) if decliners else None,
    }


def breadth_payload(breadth: dict[str, Any], *, now_ms: int, provider: str, excluded: int = 0) -> dict[str, Any]:
    return {
        **jobrun.payload_header(SCHEMA_VERSION, provider=provider, now_ms=now_ms, latest_ts_ms=now_ms),
        "breadth": breadth,
        "excluded_no_change": excluded,
        "summary": f"Red {breadth['advancers']} / Blue {breadth['decliners']} / Flat {breadth['unchanged']}",
    }


def spot_names(spot: Any) -> dict[str, str]:
    """Symbol -> Chinese short name from the spot quotes (what /api/symbols and the replay packs show)."""
    if "代码" not in spot.columns or "名称" not in spot.columns:
        return {}
    names = {}
    for code, name in zip(spot["代码"].astype(str), spot["名称"].astype(str), strict=False):
        try:
            names[normalize_cn_symbols([code.strip()])[0]] = name.strip()
        except ValueError:
            continue
    return names


def run(settings: Settings, **options: Any) -> jobrun.JobResult:
    """Fetch whole-market spot quotes, write `MARKET_BREADTH_PATH_CN`. `options`: see `jobrun.execute`."""

    def work(ctx: jobrun.JobContext) -> jobrun.Output:
        ctx.progress.start(1, "spot quotes")
        spot = ctx.vendor.a_share_spot()
        ctx.check_budget()
        ctx.progress.advance()
        breadth = compute_breadth(spot)
        payload = breadth_payload(breadth, now_ms=ctx.now_ms, provider=ctx.vendor.provider, excluded=len(spot) - breadth["total"])
        path = ctx.settings.resolve(ctx.settings.market_breadth_path_cn)
        counts = {k: breadth[k] for k in ("advancers", "decliners", "unchanged", "total")}
        return jobrun.Output(path, payload, payload["latest_ts_ms"], counts, after_commit=lambda: archive_breadth(
            ctx.settings, CN, breadth, spot_names(spot), now_ms=ctx.now_ms, provider=ctx.vendor.provider))

    return jobrun.execute(JOB, settings, work, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = jobrun.build_parser(JOB, "Write the CN red-blue market breadth.")
    return jobrun.cli(JOB, parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
