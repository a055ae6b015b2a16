"""Data readiness (`agent.data_readiness.v1`): is one symbol's context good enough to trade on?"""

from __future__ import annotations

from typing import Any

from runtime_api.decision.features import number
from runtime_api.settings import Settings

SCHEMA = "agent.data_readiness.v1"
_RANK = {"OK": 1, "WARN": 2, "ERROR": 3}
CORE_FEATURES = (("intraday", "ret_5"), ("daily", "sma_20"), ("daily", "sma_60"), ("daily", "rsi_14"))
# Long-lookback intraday features that may still be pending during the opening phase.
OPENING_FLEXIBLE = (("intraday", "ret_20"), ("intraday", "atr_14"), ("intraday", "vol_ratio_20"))


def _worst(level: str, other: str) -> str:
    return other if _RANK[other] > _RANK[level] else level


def _frame_count(ctx: dict, part: str) -> int:
    section = ctx.get(part) or {}
    if "frame_count" in section:
        return int(section["frame_count"] or 0)
    return len(section.get("frames") or [])


def evaluate(ctx: dict, *, now_ms: int, settings: Settings) -> dict[str, Any]:
    """Readiness of one symbol context, measured against `now_ms` (replay clock or wall clock)."""
    intraday_frames = _frame_count(ctx, "intraday")
    daily_frames = _frame_count(ctx, "daily")
    required_intraday = max(1, settings.data_readiness_min_intraday_frames)
    required_daily = max(1, settings.data_readiness_min_daily_frames)
    opening_min = max(1, min(required_intraday, settings.data_readiness_opening_min_intraday_frames))

    level = "OK"
    reasons: list[str] = []
    if intraday_frames < required_intraday:
        level = _worst(level, "ERROR")
        reasons.append("intraday_frames_insufficient")
    if daily_frames < required_daily:
        level = _worst(level, "ERROR")
        reasons.append("daily_frames_insufficient")

    def missing(features: tuple[tuple[str, str], ...]) -> list[str]:
        out = []
        for part, key in features:
            if number(((ctx.get(part) or {}).get("feature_snapshot") or {}).get(key)) is None:
                out.append(f"feature_missing:{part}.{key}")
        return out

    core_missing = missing(CORE_FEATURES)
    flexible_missing = missing(OPENING_FLEXIBLE)
    if core_missing or flexible_missing:
        level = _worst(level, "ERROR")
        reasons.extend(core_missing + flexible_missing)

    as_of = number(ctx.get("as_of_ts_ms"))
    if as_of is not None:
        age = max(0.0, now_ms - as_of)
        if age > settings.data_readiness_fresh_error_ms:
            level = _worst(level, "ERROR")
            reasons.append("data_too_stale")
        elif age > settings.data_readiness_fresh_warn_ms:
            level = _worst(level, "WARN")
            reasons.append("data_stale")

    opening_active = False
    opening_allowed = (
        settings.data_readiness_opening_phase_enabled and opening_min <= intraday_frames < required_intraday
    )
    fatal = "daily_frames_insufficient" in reasons or "data_too_stale" in reasons or core_missing
    if opening_allowed and level == "ERROR" and not fatal:
        dropped = {"intraday_frames_insufficient", *flexible_missing}
        kept = [r for r in reasons if r not in dropped]
        pending = [r.replace("feature_missing:", "feature_pending:") for r in flexible_missing]
        reasons = list(dict.fromkeys(["opening_phase_limited_intraday_history", *kept, *pending]))
        level = "WARN"
        opening_active = True

    return {
        "schema_version": SCHEMA,
        "level": level,
        "reasons": reasons,
        "opening_phase_active": opening_active,
        "as_of_ts_ms": int(as_of) if as_of is not None else None,
        "now_ts_ms": int(now_ms),
        "metrics": {
            "intraday_frames": intraday_frames,
            "daily_frames": daily_frames,
            "required_intraday_frames": required_intraday,
            "required_daily_frames": required_daily,
            "opening_phase_min_intraday_frames": opening_min,
        },
    }
