"""Port of the Node dataReadiness tests."""

from __future__ import annotations

from runtime_api.decision.readiness import evaluate

NOW = 1_770_000_000_000


def ctx(*, intraday: int, daily: int, as_of: int = NOW, ret5=0.001, ret20=0.002, atr=1, vol=1) -> dict:
    return {
        "as_of_ts_ms": as_of,
        "intraday": {"frame_count": intraday, "feature_snapshot": {"ret_5": ret5, "ret_20": ret20, "atr_14": atr, "vol_ratio_20": vol}},
        "daily": {"frame_count": daily, "feature_snapshot": {"sma_20": 1, "sma_60": 1, "rsi_14": 50}},
    }


def test_error_when_frames_are_insufficient(settings):
    ready = evaluate(ctx(intraday=10, daily=10, ret5=0, ret20=0), now_ms=NOW, settings=settings)
    assert ready["level"] == "ERROR"
    assert "intraday_frames_insufficient" in ready["reasons"]
    assert "daily_frames_insufficient" in ready["reasons"]
    assert ready["schema_version"] == "agent.data_readiness.v1"
    assert ready["metrics"]["intraday_frames"] == 10 and ready["metrics"]["daily_frames"] == 10


def test_warn_when_stale_but_not_too_stale(settings):
    ready = evaluate(ctx(intraday=60, daily=90, as_of=NOW - 200_000), now_ms=NOW, settings=settings)
    assert ready["level"] == "WARN"
    assert ready["reasons"] == ["data_stale"]
    assert ready["as_of_ts_ms"] == NOW - 200_000 and ready["now_ts_ms"] == NOW


def test_error_when_too_stale(settings):
    ready = evaluate(ctx(intraday=60, daily=90, as_of=NOW - 400_000), now_ms=NOW, settings=settings)
    assert ready["level"] == "ERROR" and ready["reasons"] == ["data_too_stale"]


def test_opening_phase_warns_when_only_long_lookback_features_are_pending(settings):
    ready = evaluate(ctx(intraday=6, daily=90, ret20=None, atr=None, vol=None), now_ms=NOW, settings=settings)
    assert ready["level"] == "WARN"
    assert ready["opening_phase_active"] is True
    assert ready["reasons"] == [
        "opening_phase_limited_intraday_history",
        "feature_pending:intraday.ret_20",
        "feature_pending:intraday.atr_14",
        "feature_pending:intraday.vol_ratio_20",
    ]


def test_opening_phase_stays_error_when_core_feature_missing(settings):
    ready = evaluate(ctx(intraday=6, daily=90, ret5=None, ret20=None, atr=None, vol=None), now_ms=NOW, settings=settings)
    assert ready["level"] == "ERROR"
    assert ready["opening_phase_active"] is False
    assert any(r.startswith("feature_missing:intraday.ret_5") for r in ready["reasons"])


def test_error_when_required_feature_missing_with_enough_frames(settings):
    ready = evaluate(ctx(intraday=60, daily=90, ret5=None, ret20=None), now_ms=NOW, settings=settings)
    assert ready["level"] == "ERROR"
    assert "feature_missing:intraday.ret_5" in ready["reasons"]


def test_opening_phase_can_be_disabled(settings):
    off = settings.replace(data_readiness_opening_phase_enabled=False)
    ready = evaluate(ctx(intraday=6, daily=90, ret20=None, atr=None, vol=None), now_ms=NOW, settings=off)
    assert ready["level"] == "ERROR" and ready["opening_phase_active"] is False
